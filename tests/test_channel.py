"""The kernel websocket engine against a real Jupyter Server and real kernels, in both wire protocols."""

from __future__ import annotations

import threading
import time

import pytest

from remote_magic import (
    ExecutionTimeout,
    RemoteExecutionError,
    RequestDropped,
    Server,
)


def collect(kernel, code: str, **options) -> list[dict]:
    return list(kernel.execute(code, **options))


# ---------------------------------------------------------------------------------- outputs


def test_the_server_selects_the_requested_protocol(proto_kernel):
    proto_kernel.run("pass")
    assert proto_kernel.channel.protocol == proto_kernel.server.protocol
    info = proto_kernel.channel.kernel_info
    assert info["msg_type"] == "kernel_info_reply"
    assert info["content"]["language_info"]["name"] == "python"


def test_stream_outputs_on_stdout_and_stderr(proto_kernel):
    result = proto_kernel.run("import sys\nprint('out 1')\nprint('err', file=sys.stderr)\nprint('out 2')")
    assert result.ok
    assert result.text() == "out 1\nout 2\n"
    assert result.text("stderr") == "err\n"


def test_execute_result_with_execution_count(proto_kernel):
    result = proto_kernel.run("6 * 7")
    assert result.result == {"text/plain": "42"}
    [output] = result.outputs
    assert output["output_type"] == "execute_result"
    assert output["execution_count"] == result.execution_count > 0


def test_display_data_with_metadata_and_update(proto_kernel):
    code = (
        "from IPython.display import display, HTML, Image\n"
        "display(HTML('<b>bold</b>'), metadata={'isolated': True})\n"
        "handle = display('first', display_id=True)\n"
        "handle.update('second')\n"
    )
    result = proto_kernel.run(code)
    assert result.ok
    html, updated = result.outputs
    assert html["output_type"] == "display_data"
    assert html["data"]["text/html"] == "<b>bold</b>"
    assert html["metadata"] == {"isolated": True}
    assert updated["data"]["text/plain"] == "'second'"


def test_clear_output_keeps_only_what_follows(proto_kernel):
    result = proto_kernel.run(
        "from IPython.display import clear_output\nprint('gone')\nclear_output()\nprint('kept')"
    )
    assert result.outputs == [{"output_type": "stream", "name": "stdout", "text": "kept\n"}]


def test_error_output_and_reply(proto_kernel):
    result = proto_kernel.run("print('before')\n1 / 0")
    assert result.status == "error"
    assert result.text() == "before\n"
    error = result.outputs[-1]
    assert error["output_type"] == "error"
    assert error["ename"] == "ZeroDivisionError"
    assert "ZeroDivisionError" in "".join(error["traceback"])
    with pytest.raises(RemoteExecutionError) as info:
        result.raise_for_error()
    assert info.value.ename == "ZeroDivisionError"
    assert str(info.value) == "ZeroDivisionError: division by zero"


def test_state_is_kept_across_executions(proto_kernel):
    proto_kernel.run("counter = 41")
    proto_kernel.run("counter += 1")
    assert proto_kernel.run("counter").result == {"text/plain": "42"}


def test_execute_yields_the_request_messages_in_order(proto_kernel):
    messages = collect(proto_kernel, "print('x')")
    types = [m["msg_type"] for m in messages]
    assert types[0] == "status" and messages[0]["content"]["execution_state"] == "busy"
    assert "execute_input" in types and "stream" in types and "execute_reply" in types
    assert types[-1] in ("status", "execute_reply")
    parent = messages[0]["parent_header"]["msg_id"]
    assert all(m["parent_header"]["msg_id"] == parent for m in messages)


# ---------------------------------------------------------------------------------- binary buffers


def test_buffers_from_the_kernel(proto_kernel):
    code = (
        "from comm import create_comm\n"
        "c = create_comm(target_name='remote_magic.test', data={'a': 1}, buffers=[b'\\x00\\x01open'])\n"
        "c.send({'b': 2}, buffers=[b'first', memoryview(bytes(range(256)))])\n"
    )
    messages = {m["msg_type"]: m for m in proto_kernel.execute(code)}
    opened, sent = messages["comm_open"], messages["comm_msg"]
    assert opened["content"]["data"] == {"a": 1}
    assert [bytes(b) for b in opened["buffers"]] == [b"\x00\x01open"]
    assert sent["content"]["data"] == {"b": 2}
    assert [bytes(b) for b in sent["buffers"]] == [b"first", bytes(range(256))]


def test_buffers_to_the_kernel(proto_kernel):
    proto_kernel.run(
        "from comm import get_comm_manager\n"
        "received = []\n"
        "def _opened(comm, msg):\n"
        "    received.append(('open', [bytes(b) for b in msg['buffers']]))\n"
        "    comm.on_msg(lambda m: received.append(('msg', [bytes(b) for b in m['buffers']])))\n"
        "get_comm_manager().register_target('remote_magic.echo', _opened)\n"
    ).raise_for_error()
    channel = proto_kernel.channel
    opening = channel.new_message("comm_open", {"comm_id": "echo-1", "target_name": "remote_magic.echo", "data": {}})
    opening["buffers"] = [b"\xffopen\x00"]
    message = channel.new_message("comm_msg", {"comm_id": "echo-1", "data": {}})
    message["buffers"] = [b"one", bytes(range(256)), b""]
    channel.send(opening)
    channel.send(message)
    # The kernel handles shell messages in order: the comm messages are in before this runs.
    result = proto_kernel.run("print(repr(received))").raise_for_error()
    assert result.text() == repr([("open", [b"\xffopen\x00"]), ("msg", [b"one", bytes(range(256)), b""])]) + "\n"


# ---------------------------------------------------------------------------------- stdin


def test_input_request_is_answered(proto_kernel):
    prompts = []

    def answer(prompt, password):
        prompts.append((prompt, password))
        return "Ada"

    result = proto_kernel.run("name = input('Name? ')\nprint('hello', name)", input=answer)
    assert result.ok
    assert prompts == [("Name? ", False)]
    assert result.text().endswith("hello Ada\n")


def test_getpass_is_answered_as_a_password(proto_kernel):
    prompts = []

    def answer(prompt, password):
        prompts.append((prompt, password))
        return "s3cret"

    result = proto_kernel.run("import getpass\npw = getpass.getpass('Password: ')\nprint(len(pw))", input=answer)
    assert prompts == [("Password: ", True)]
    assert result.text().endswith("6\n")


def test_stdin_refused_when_no_input_function(proto_kernel):
    result = proto_kernel.run("input('x')", input=None)
    assert result.status == "error"
    assert result.error().ename == "StdinNotImplementedError"


# ---------------------------------------------------------------------------------- interrupt, restart


def test_interrupt_from_another_thread_ends_a_long_sleep(fresh_kernel):
    fresh_kernel.run("ready = True")
    messages = []
    # timeout=10 bounds the wait: without a working interrupt this raises ExecutionTimeout.
    for msg in fresh_kernel.execute("print('sleeping', flush=True)\nimport time\ntime.sleep(30)", timeout=10):
        messages.append(msg)
        if msg["msg_type"] == "stream":
            threading.Thread(target=fresh_kernel.interrupt).start()
    [reply] = [m for m in messages if m["channel"] == "shell"]
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert [m["content"]["text"] for m in messages if m["msg_type"] == "stream"] == ["sleeping\n"]
    assert fresh_kernel.run("ready").result == {"text/plain": "True"}  # state survives an interrupt


def test_an_interrupt_before_the_code_runs_ends_the_request_without_a_reply(kernel, hold_before_running, wait_until):
    """ipykernel drops a request interrupted while it prepares the code: ``idle``, no reply. The
    request ends with RequestDropped instead of waiting for a reply that never comes."""
    held = hold_before_running(kernel)
    outcome = {}

    def run():
        try:
            outcome["result"] = kernel.run("# hold\nprint('ran')", timeout=30)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(held.exists, timeout=30, message="the kernel to hold the cell")
    kernel.interrupt()
    thread.join(45)
    assert isinstance(outcome.get("error"), RequestDropped), outcome
    assert "without a reply" in str(outcome["error"])
    assert kernel.run("40 + 2").result == {"text/plain": "42"}


def test_a_timeout_whose_interrupt_lands_before_the_code_runs_says_so(kernel, hold_before_running):
    held = hold_before_running(kernel)
    with pytest.raises(ExecutionTimeout, match="ran past its 1s timeout"):
        kernel.run("# hold\nprint('ran')", timeout=1, on_timeout=kernel.interrupt)
    assert held.exists()
    assert kernel.run("40 + 2").result == {"text/plain": "42"}


def test_restart_loses_state_and_the_kernel_answers_after(fresh_kernel):
    fresh_kernel.run("kept = 1")
    fresh_kernel.restart()
    result = fresh_kernel.run("print('kept' in globals())")
    assert result.text() == "False\n"
    assert fresh_kernel.run("2 + 2").result == {"text/plain": "4"}


def test_output_right_after_restart_is_not_lost(fresh_kernel):
    # After a restart the server's iopub subscription to the new kernel process takes a moment;
    # restart() must not return before output flows again.
    for attempt in range(5):
        fresh_kernel.restart()
        assert fresh_kernel.run(f"print({attempt})", timeout=30).text() == f"{attempt}\n"


# ---------------------------------------------------------------------------------- one process, many handles


def test_two_clients_in_one_process_share_a_kernel_without_evicting_each_other(jupyter_server, proto_kernel):
    other = Server(jupyter_server.url, jupyter_server.token)
    try:
        twin = other.kernel(proto_kernel.id)
        proto_kernel.run("shared = 'yes'")
        for _ in range(3):
            assert twin.run("print(shared)", timeout=30).text() == "yes\n"
            assert proto_kernel.run("print(shared)", timeout=30).text() == "yes\n"
        assert twin.channel.session_id != proto_kernel.channel.session_id
        assert twin.channel.reconnects == 0
    finally:
        other.close()


def test_attaching_to_a_busy_kernel_connects_without_waiting_for_its_cell(jupyter_server, fresh_kernel):
    fresh_kernel.run("pass")
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (fresh_kernel.run("import time\ntime.sleep(60)"), done.set()), daemon=True
    )
    worker.start()
    deadline = time.monotonic() + 30
    while fresh_kernel.model()["execution_state"] != "busy":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    other = Server(jupyter_server.url, jupyter_server.token)
    try:
        twin = other.kernel(fresh_kernel.id)
        twin.channel.open()  # answered on the control channel while the shell is busy
        assert not done.is_set()  # the long cell is still running
        assert twin.channel.kernel_info["content"]["language_info"]["name"] == "python"
        fresh_kernel.interrupt()
        assert done.wait(10)
        assert twin.run("print('after')").text() == "after\n"
    finally:
        other.close()


# ---------------------------------------------------------------------------------- first request


def test_the_first_request_goes_out_without_waiting_for_the_kernel_info(jupyter_server, monkeypatch):
    """Connecting asks for the kernel's info but does not wait for it: the first cell costs one
    round trip, not two. The reader is held until the cell's request has gone out, so waiting for
    the info first could only end by the gate's bound."""
    from remote_magic.wire import KernelSocket

    sent, gate = [], threading.Event()
    real_send, real_receive = KernelSocket.send, KernelSocket.receive

    def send(socket, msg):
        real_send(socket, msg)
        sent.append(msg["msg_type"])
        if msg["msg_type"] == "execute_request":
            gate.set()

    def receive(socket):
        gate.wait(15)
        return real_receive(socket)

    monkeypatch.setattr(KernelSocket, "send", send)
    monkeypatch.setattr(KernelSocket, "receive", receive)
    server = Server(jupyter_server.url, jupyter_server.token)
    remote = server.start_kernel()
    try:
        started = time.monotonic()
        assert remote.run("6 * 7", timeout=60).result == {"text/plain": "42"}
        assert time.monotonic() - started < 14, "the cell waited for the gate's bound: something waited for a reply first"
        assert sent[:2] == ["kernel_info_request", "execute_request"]
        asked_before = sent.count("kernel_info_request")  # (an idle that overtakes its reply adds a probe)
        info = remote.channel.kernel_info  # collected when asked for, from that first request
        assert info["channel"] == "control" and info["content"]["language_info"]["name"] == "python"
        assert sent.count("kernel_info_request") == asked_before
    finally:
        remote.shutdown()
        server.close()
