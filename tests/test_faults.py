"""Faults of the link and the kernel: each ends the cell with a named error within a bound, or is
survived, and nothing that arrives is lost or shown in the wrong cell."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import pytest
from netfaults import TcpForwarder
from wsrelay import WebSocketRelay

from remote_magic import (
    ConnectionLost,
    NotFound,
    ProtocolError,
    Server,
    exchange,
    protocol,
)
from remote_magic.launch import LaunchedServer

SLOW_START = 6.0  # seconds a kernel of the "slow" kernelspec takes before it answers


@pytest.fixture(scope="module")
def slow_kernel_server(tmp_path_factory):
    """A Jupyter Server with a kernelspec whose kernel sleeps before it starts answering."""
    data = tmp_path_factory.mktemp("jupyter-data")
    spec = data / "kernels" / "slow"
    spec.mkdir(parents=True)
    command = f"sleep {SLOW_START:g}; exec {sys.executable} -m ipykernel_launcher -f {{connection_file}}"
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": ["sh", "-c", command], "display_name": "Slow", "language": "python"})
    )
    launched = LaunchedServer(env={"JUPYTER_PATH": str(data)})
    yield launched
    launched.stop()


@pytest.fixture
def slow_kernel(slow_kernel_server):
    """A kernel of the "slow" kernelspec, not yet connected to."""
    server = Server(slow_kernel_server.url, slow_kernel_server.token)
    kernel = server.start_kernel("slow")
    yield kernel
    kernel.shutdown()
    server.close()


def test_a_kernel_slower_to_start_than_the_connect_timeout_is_waited_for(slow_kernel):
    slow_kernel.channel.connect_timeout = SLOW_START / 3  # the server holds the handshake longer than this
    result = slow_kernel.run("print('up')", timeout=120)
    assert result.text() == "up\n"
    notices = [o["text"] for o in result.outputs if o.get("name") == "stderr"]
    assert len(notices) == 1 and f"kernel {slow_kernel.id} is still starting" in notices[0]  # said once, in the cell


def test_a_kernel_that_never_answers_ends_with_connection_lost_at_start_timeout(slow_kernel):
    slow_kernel.channel.connect_timeout = 1.0
    slow_kernel.channel.start_timeout = 2.0  # shorter than the kernel's start: it must give up, and say why
    with pytest.raises(ConnectionLost) as info:
        slow_kernel.run("pass")
    assert "still starting" in str(info.value) and "\n" not in str(info.value)


def _ctrl_c_after(*delays: float) -> threading.Thread:
    """Press Ctrl-C (SIGINT to the main thread) after each delay, as a user would."""

    def press():
        for delay in delays:
            time.sleep(delay)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    thread = threading.Thread(target=press, daemon=True)
    thread.start()
    return thread


CLEANS_UP_SLOWLY = (
    "import time\n"
    "try:\n"
    "    print('working', flush=True)\n"
    "    time.sleep(60)\n"
    "except KeyboardInterrupt:\n"
    "    time.sleep(1.5)\n"
    "    print('cleaned up', flush=True)\n"
    "    raise\n"
)


def test_late_output_of_an_abandoned_cell_is_marked_late_and_does_not_fail_the_next(kernel):
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for msg in kernel.execute(CLEANS_UP_SLOWLY, on_keyboard_interrupt=kernel.interrupt, timeout=60):
            seen.append(msg)
            if msg["msg_type"] == "stream":
                presser = _ctrl_c_after(0.2, 0.5)  # the second press abandons the cell mid clean-up
    presser.join()
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["working\n"]
    time.sleep(2.5)  # the clean-up output and the remote KeyboardInterrupt arrive meanwhile
    messages = []
    result = kernel.run("print('next')", timeout=60, on_message=messages.append)
    late = [m for m in messages if m.get("late")]
    assert [m["msg_type"] for m in late] == ["stream", "error"]  # seen, marked as not this request's
    assert late[0]["content"]["text"] == "cleaned up\n" and late[1]["content"]["ename"] == "KeyboardInterrupt"
    assert result.ok and result.outputs == [{"output_type": "stream", "name": "stdout", "text": "next\n"}]
    result = kernel.run("print('and after')", timeout=60)
    assert result.ok and result.text() == "and after\n"  # nothing of the abandoned cell any more


def test_a_ctrl_c_while_a_message_is_read_keeps_the_message(kernel, monkeypatch):
    """The thread waiting for a request reads its messages itself; a Ctrl-C that lands while one
    is decoded and routed is held until the message is delivered, then interrupts the kernel."""
    decode, pressed = protocol.decode_frame, []

    def pressing_ctrl_c(data, **kwargs):
        msg = decode(data, **kwargs)
        if msg["msg_type"] == "stream" and msg["content"]["text"] == "5\n" and not pressed:
            pressed.append(threading.current_thread())
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            time.sleep(0.05)  # the signal's handler runs now, in the middle of reading this message
        return msg

    monkeypatch.setattr(protocol, "decode_frame", pressing_ctrl_c)
    code = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.02)"
    seen = list(kernel.execute(code, on_keyboard_interrupt=kernel.interrupt, timeout=60))
    assert pressed == [threading.main_thread()]  # the request's own thread read the message
    lines = "".join(m["content"]["text"] for m in seen if m["msg_type"] == "stream").split()
    assert lines == [str(i) for i in range(len(lines))] and len(lines) > 5, lines  # none lost, 5 included
    reply = next(m for m in seen if m["msg_type"] == "execute_reply")
    assert reply["content"]["ename"] == "KeyboardInterrupt"  # then the kernel was interrupted


# ---------------------------------------------------------------------------------- the link


@pytest.fixture(params=["legacy", "v1"])
def wire_protocol(request):
    return request.param


def _kernel_through(url: str, token: str, protocol: str, **options):
    server = Server(url, token, protocol=protocol, **options)
    kernel = server.start_kernel()
    kernel.run("pass", timeout=60)
    return server, kernel


def _stop(jupyter_server, server, kernel) -> None:
    server.close()
    try:
        Server(jupyter_server.url, jupyter_server.token).kernels.shutdown(kernel.id)
    except NotFound:
        pass


def test_a_frozen_link_ends_the_cell_with_connection_lost_and_the_next_cell_reconnects(jupyter_server):
    ping_timeout = 2.0
    with TcpForwarder.to_url(jupyter_server.url) as link:
        server, kernel = _kernel_through(link.url_for(jupyter_server.url), jupyter_server.token, "v1", ping_timeout=ping_timeout)
        try:
            frozen_at = None
            with pytest.raises(ConnectionLost) as info:
                for msg in kernel.execute("print('working', flush=True)\nimport time\ntime.sleep(20)", timeout=120):
                    if msg["msg_type"] == "stream":
                        link.freeze()  # a suspended laptop or a dead VPN: nothing is closed
                        frozen_at = time.monotonic()
            waited = time.monotonic() - frozen_at
            assert "\n" not in str(info.value) and "outputs until then were shown" in str(info.value)
            assert waited < 2 * ping_timeout + 2  # the stated bound (plus scheduling slack), not the 20s cell
            link.thaw()
            assert kernel.run("print('back')", timeout=60).text() == "back\n"
        finally:
            _stop(jupyter_server, server, kernel)


def test_output_lost_when_the_connection_is_cut_is_announced_in_the_cell(jupyter_server):
    lines = 10_000
    code = (
        "import sys, time\n"
        f"for i in range({lines}):\n"
        "    print(f'line {i}')\n"
        "    if i % 50 == 0:\n"
        "        sys.stdout.flush()\n"
        "        time.sleep(0.005)\n"
    )
    with TcpForwarder.to_url(jupyter_server.url, delay=0.05) as link:  # 50 ms each way
        server, kernel = _kernel_through(link.url_for(jupyter_server.url), jupyter_server.token, "v1")
        try:
            chunks, notices, cut = [], [], False
            for msg in kernel.execute(code, timeout=120):
                if msg["msg_type"] != "stream":
                    continue
                if msg["content"]["name"] == "stderr":
                    notices.append((len(chunks), msg["content"]["text"]))
                    continue
                chunks.append(msg["content"]["text"])
                if sum(map(len, chunks)) > 30_000 and not cut:
                    link.cut()  # what was on its way through the link is gone
                    cut = True
            assert kernel.channel.reconnects == 1
            assert len(notices) == 1 and "lost while the connection was down" in notices[0][1]
            # A stream message may end mid-line, so only whole lines on each side of the notice count.
            before = "".join(chunks[: notices[0][0]]).split("\n")[:-1]
            after = "".join(chunks[notices[0][0] :]).split("\n")[1:-1]
            numbers = [int(line.split()[1]) for line in before + after]
            assert numbers == sorted(set(numbers)) and numbers[-1] == lines - 1  # in order, none twice, to the end
            assert int(after[0].split()[1]) - int(before[-1].split()[1]) > 3  # a real gap, where the notice is
        finally:
            _stop(jupyter_server, server, kernel)


@pytest.mark.parametrize("fault", ["corrupt", "mask"])
def test_a_malformed_frame_is_announced_and_the_kernel_stays_usable(jupyter_server, wire_protocol, fault):
    kind = "v1-offsets" if wire_protocol == "v1" else "legacy-json"
    with WebSocketRelay(jupyter_server.url) as relay:
        server, kernel = _kernel_through(relay.url, jupyter_server.token, wire_protocol)
        try:
            first = lambda frame: b'"stream"' in frame and b"first" in frame  # noqa: E731
            relay.mask_next(when=first) if fault == "mask" else relay.corrupt_next(kind, when=first)
            result = kernel.run("print('first', flush=True)\nimport time\ntime.sleep(0.2)\nprint('second')", timeout=60)
            stderr = result.text("stderr")
            assert result.text() == "second\n" and result.ok
            assert stderr.startswith("remote_magic: dropped a malformed message from the server") and stderr.count("\n") == 1
            assert fault != "mask" or "(the server sent a masked frame)" in stderr  # refused, not unmasked
            assert kernel.channel.malformed_frames == 1
            assert kernel.run("print('next')", timeout=60).text() == "next\n"  # the reader lives on
        finally:
            _stop(jupyter_server, server, kernel)


def test_a_malformed_end_of_request_ends_the_cell_with_protocol_error(jupyter_server, wire_protocol, monkeypatch):
    monkeypatch.setattr(exchange, "LIVENESS_INTERVAL", 0.5)
    kind = "v1-json" if wire_protocol == "v1" else "legacy-json"
    with WebSocketRelay(jupyter_server.url) as relay:
        server, kernel = _kernel_through(relay.url, jupyter_server.token, wire_protocol)
        try:
            relay.corrupt_next(kind, when=lambda frame: b"execute_reply" in frame)
            with pytest.raises(ProtocolError) as info:
                kernel.run("print('shown')", timeout=60)
            assert "\n" not in str(info.value) and "malformed" in str(info.value)
            assert kernel.run("print('next')", timeout=60).text() == "next\n"
        finally:
            _stop(jupyter_server, server, kernel)


def test_a_fragmented_message_arrives_whole_and_a_ping_between_its_fragments_is_answered(jupyter_server, wire_protocol, wait_until):
    with WebSocketRelay(jupyter_server.url) as relay:
        server, kernel = _kernel_through(relay.url, jupyter_server.token, wire_protocol)
        try:
            relay.fragment_next(4, ping=b"still there?", when=lambda frame: b'"stream"' in frame and b"x" * 100 in frame)
            result = kernel.run("print('x' * 100_000)", timeout=60)
            assert result.text() == "x" * 100_000 + "\n" and result.ok and relay.pending_faults == 0
            wait_until(lambda: b"still there?" in relay.pongs, timeout=10, message="the pong")
            assert kernel.run("print('next')", timeout=60).text() == "next\n"
        finally:
            _stop(jupyter_server, server, kernel)


def test_frames_arriving_in_tiny_pieces_are_read_whole(jupyter_server, wire_protocol):
    with TcpForwarder.to_url(jupyter_server.url) as link:
        server, kernel = _kernel_through(link.url_for(jupyter_server.url), jupyter_server.token, wire_protocol)
        try:
            link.piece = 3  # headers and payloads cut everywhere: 16- and 64-bit lengths below
            result = kernel.run("print('short')\ndisplay('y' * 70_000)\n'z' * 300", timeout=60)
            assert result.ok and result.text() == "short\n"
            assert [len(out["data"]["text/plain"]) for out in result.outputs[1:]] == [70_002, 302]
        finally:
            _stop(jupyter_server, server, kernel)


# ---------------------------------------------------------------------------------- in the shell


def test_after_a_double_ctrl_c_the_next_cell_shows_the_late_output_and_succeeds(remote_shell, capsys):
    remote_shell.run_cell("%%remote\npass").raise_error()
    presser = _ctrl_c_after(1.0, 0.5)  # the second press abandons the cell during its clean-up
    abandoned = remote_shell.run_cell("%%remote\n" + CLEANS_UP_SLOWLY)
    presser.join()
    assert isinstance(abandoned.error_in_exec, KeyboardInterrupt)
    time.sleep(2.5)  # the clean-up output and the remote KeyboardInterrupt arrive meanwhile
    capsys.readouterr()
    following = remote_shell.run_cell("%%remote\nprint('next')\n21 * 2")
    shown = capsys.readouterr()
    assert following.success and following.result.data == {"text/plain": "42"}
    assert "output of an earlier cell" in shown.err and "cleaned up" in shown.out and "KeyboardInterrupt" in shown.err
    assert shown.out.index("cleaned up") < shown.out.index("next")
    assert remote_shell.run_cell("%%remote\nprint('and after')").success


def test_background_thread_output_after_a_cell_ends_is_shown_in_the_next_cell(remote_shell, capsys):
    remote_shell.run_cell(
        "%%remote\nimport threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.5), print('from the thread', flush=True))).start()"
    ).raise_error()
    time.sleep(1.5)
    capsys.readouterr()
    remote_shell.run_cell("%%remote\nprint('next')").raise_error()
    shown = capsys.readouterr()
    assert "from the thread\n" in shown.out and "next\n" in shown.out  # not lost
    assert shown.out.index("from the thread") < shown.out.index("next")


def test_the_ping_timeout_setting_reaches_the_kernel_websocket(shell, jupyter_server, monkeypatch):
    import remote_magic

    monkeypatch.setenv("RM_TEST_TOKEN", jupyter_server.token)
    shell.run_line_magic("config", "RemoteMagic.ping_timeout = 3.0")
    try:
        shell.run_line_magic("remote", f"connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name pinged")
        kernel = remote_magic.registry.current.default_kernel()
        assert kernel.channel.ping_timeout == 3.0
    finally:
        shell.run_line_magic("config", "RemoteMagic.ping_timeout = 10.0")
