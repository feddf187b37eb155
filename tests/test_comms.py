"""Comm messages routed by comm id and target name, against real kernels on both wire protocols."""

from __future__ import annotations

import queue

ECHO_TARGET = """
from comm import get_comm_manager
comm_log = []
def _echo_opened(comm, msg):
    comm_log.append(('open', msg['content']['data'], [bytes(b) for b in msg['buffers']]))
    comm.send({'opened': msg['content']['data']}, buffers=[bytes(b)[::-1] for b in msg['buffers']])
    def echo(m):
        comm.send({'echo': m['content']['data']}, buffers=[bytes(b)[::-1] for b in m['buffers']])
    comm.on_msg(echo)
    comm.on_close(lambda m: comm_log.append(('close', m['content']['data'])))
get_comm_manager().register_target('rm.echo', _echo_opened)
"""


def next_message(inbox: queue.Queue, timeout: float = 30.0):
    return inbox.get(timeout=timeout)  # raises queue.Empty rather than hang


def test_a_comm_opened_here_talks_both_ways_with_buffers_after_its_cell_ended(proto_kernel):
    proto_kernel.run(ECHO_TARGET).raise_for_error()  # the cell that sets up the target has ended
    channel = proto_kernel.channel
    inbox: queue.Queue = queue.Queue()
    comm_id = channel.open_comm("rm.echo", {"hello": "wörld"}, buffers=[b"\x00\xffopen"], on_msg=inbox.put)

    opened = next_message(inbox)
    assert opened["msg_type"] == "comm_msg" and opened["content"]["comm_id"] == comm_id
    assert opened["content"]["data"] == {"opened": {"hello": "wörld"}}
    assert [bytes(b) for b in opened["buffers"]] == [b"nepo\xff\x00"]

    big = bytes(range(256)) * 4096  # 1 MiB
    channel.send_comm(comm_id, {"n": 2}, buffers=[big, b"", memoryview(b"abc")])
    echoed = next_message(inbox)
    assert echoed["content"]["data"] == {"echo": {"n": 2}}
    assert [bytes(b) for b in echoed["buffers"]] == [big[::-1], b"", b"cba"]

    channel.close_comm(comm_id, {"bye": True})
    assert comm_id not in channel.comms._by_id
    log = proto_kernel.run("print(repr(comm_log[-2:]))").raise_for_error().text()
    assert log == repr([("open", {"hello": "wörld"}, [b"\x00\xffopen"]), ("close", {"bye": True})]) + "\n"
    assert inbox.empty() and not channel.comms.take_unclaimed()


def test_a_comm_the_kernel_opens_reaches_its_target_consumer_not_the_cell(proto_kernel):
    channel = proto_kernel.channel
    inbox: queue.Queue = queue.Queue()

    def opened(msg):  # on the reader thread: register the comm before its next message is routed
        channel.comms.register(msg["content"]["comm_id"], inbox.put)
        inbox.put(msg)

    channel.comms.on_open("rm.kernel-side", opened)
    try:
        messages = list(
            proto_kernel.execute(
                "from comm import create_comm\n"
                "kc = create_comm(target_name='rm.kernel-side', data={'v': 1}, buffers=[b'\\x01\\x02'])\n"
                "kc.on_msg(lambda m: kc.send({'got': m['content']['data']}, buffers=m['buffers']))\n"
                "kc.send({'in': 'the opening cell'})\n"
            )
        )
        assert not [m for m in messages if m["msg_type"].startswith("comm_")]  # the consumer took them
        first, second = next_message(inbox), next_message(inbox)
        assert first["msg_type"] == "comm_open" and first["content"]["data"] == {"v": 1}
        assert [bytes(b) for b in first["buffers"]] == [b"\x01\x02"]
        assert second["content"]["data"] == {"in": "the opening cell"}
        comm_id = first["content"]["comm_id"]

        # From a later cell: the consumer still gets it, the later cell does not.
        later = list(proto_kernel.execute("kc.send({'in': 'a later cell'}, buffers=[b'later'])"))
        assert not [m for m in later if m["msg_type"].startswith("comm_")]
        message = next_message(inbox)
        assert message["content"]["data"] == {"in": "a later cell"} and [bytes(b) for b in message["buffers"]] == [b"later"]

        # Answers to messages sent from here, while no request is pending.
        channel.send_comm(comm_id, {"q": 1}, buffers=[b"\x00" * 10])
        answer = next_message(inbox)
        assert answer["content"]["data"] == {"got": {"q": 1}} and [bytes(b) for b in answer["buffers"]] == [b"\x00" * 10]

        proto_kernel.run("kc.close({'done': 1})").raise_for_error()
        closed = next_message(inbox)
        assert closed["msg_type"] == "comm_close" and closed["content"]["data"] == {"done": 1}
        assert comm_id not in channel.comms._by_id  # its routing ended with it
    finally:
        channel.comms.on_open("rm.kernel-side", None)


def test_comm_messages_nobody_claims_are_kept_as_unclaimed_not_as_late_output(proto_kernel):
    channel = proto_kernel.channel
    messages = list(
        proto_kernel.execute(
            "from comm import create_comm\n"
            "uc = create_comm(target_name='rm.nobody', data={})\n"
            "uc.on_msg(lambda m: uc.send({'answer': m['content']['data']}))\n"
        )
    )
    opened = [m for m in messages if m["msg_type"] == "comm_open"]  # while its cell is pending, the cell gets it
    assert len(opened) == 1
    comm_id = opened[0]["content"]["comm_id"]
    channel.comms.take_unclaimed()
    before = channel.comms.unclaimed_count

    channel.send_comm(comm_id, {"q": 2})  # the answer's parent is this comm_msg: no request is pending
    proto_kernel.run("pass").raise_for_error()  # the kernel answers in order: the answer came first
    unclaimed = channel.comms.take_unclaimed()
    assert [m["content"]["data"] for m in unclaimed] == [{"answer": {"q": 2}}]
    assert channel.comms.unclaimed_count == before + 1
    late = [m for m in proto_kernel.execute("pass") if m.get("late")]
    assert not late
