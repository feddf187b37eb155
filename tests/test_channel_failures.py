"""A kernel channel when things fail mid-cell: the kernel dies, is restarted or shut down by someone
else, the websocket drops, the handshake is refused. Each ends with a named error or is survived,
and no output is lost."""

from __future__ import annotations

import socket
import time

import pytest

from remote_magic import (
    AuthenticationError,
    ConnectionLost,
    KernelChannel,
    KernelDied,
    NotFound,
    Server,
)
from remote_magic import exchange as exchange_module
from remote_magic.rest import RestClient


def count_connects(channel: KernelChannel) -> list[int]:
    """Count the websocket handshakes a channel makes (the channel itself is untouched)."""
    calls = [0]
    connect = channel._connect

    def counting(timeout):
        calls[0] += 1
        return connect(timeout)

    channel._connect = counting
    return calls


def break_socket(channel: KernelChannel) -> None:
    """Break the TCP connection under the websocket, as a network failure would."""
    channel._socket._ws.sock.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------------------------- failures mid-cell


def test_kernel_dying_mid_cell_raises_kernel_died_after_its_outputs(fresh_kernel):
    seen = []
    with pytest.raises(KernelDied) as info:
        for msg in fresh_kernel.execute(
            "print('last words', flush=True)\nimport os, time\ntime.sleep(0.5)\nos._exit(1)", timeout=60
        ):
            seen.append(msg)
    assert "\n" not in str(info.value) and fresh_kernel.id in str(info.value)
    assert "last words\n" in [m["content"].get("text") for m in seen if m["msg_type"] == "stream"]
    # The server restarted it: usable again, with its state gone.
    assert fresh_kernel.run("1 + 1", timeout=60).result == {"text/plain": "2"}


def test_kernel_dying_while_idle_is_not_blamed_on_the_next_cell(fresh_kernel, caplog):
    channel = fresh_kernel.channel
    fresh_kernel.run(
        "import os, threading, time\n"
        "state = 'old'\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), os._exit(1)), daemon=True).start()"
    ).raise_for_error()
    # Wait until the server's `restarting` status has reached the idle channel.
    deadline = time.monotonic() + 60
    while not channel._router._idle_events:
        assert time.monotonic() < deadline, "the server did not report the restart"
        time.sleep(0.05)
    with caplog.at_level("WARNING", logger="remote_magic"):
        first = fresh_kernel.run("print('state' in globals())", timeout=60)
    assert first.text() == "False\n"  # a fresh kernel, and the cell itself ran normally
    assert "state is lost" in caplog.text
    assert fresh_kernel.run("print('next')").outputs == [{"output_type": "stream", "name": "stdout", "text": "next\n"}]


def test_websocket_dropped_mid_execution_loses_no_output(fresh_kernel):
    lines, breaks_at = 16, (2, 7, 12)
    code = (
        "import sys, time\n"
        f"for i in range({lines}):\n"
        "    sys.stdout.write(f'line {i}\\n')\n"
        "    sys.stdout.flush()\n"
        "    time.sleep(0.15)\n"
    )
    channel = fresh_kernel.channel
    fresh_kernel.run("pass")
    session = channel.session_id
    text = ""
    for msg in fresh_kernel.execute(code, timeout=60):
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
            if text.count("\n") in breaks_at and text.endswith("\n"):
                break_socket(channel)
    assert text.splitlines() == [f"line {i}" for i in range(lines)]  # each exactly once, in order
    assert channel.reconnects == len(breaks_at)
    assert channel.session_id == session  # the same client session, so the server replayed its buffer
    assert fresh_kernel.run("print('still here')").text() == "still here\n"


def test_websocket_dropped_while_idle_reconnects_on_its_own(proto_kernel):
    channel = proto_kernel.channel
    proto_kernel.run("pass")
    before = channel.reconnects
    break_socket(channel)
    assert proto_kernel.run("print('after the drop')").text() == "after the drop\n"
    assert channel.reconnects == before + 1


# ---------------------------------------------------------------------------------- handshake refusals


def test_closing_the_channel_ends_a_request_in_flight(kernel, make_busy):
    """Closing a kernel's websocket (a disconnect, a shutdown) while another thread waits on a
    request of it ends that request with ConnectionLost at once, instead of leaving it waiting."""
    busy = make_busy(kernel)
    kernel.channel.close()
    busy.join(10)
    assert not busy.is_alive(), "the request still waits on a closed channel"
    assert isinstance(busy.outcome, ConnectionLost) and "was closed" in str(busy.outcome), busy.outcome


def test_unknown_kernel_is_refused_at_once(server):
    channel = KernelChannel(server._rest, "00000000-0000-4000-8000-000000000000")
    calls = count_connects(channel)
    with pytest.raises(NotFound) as info:
        channel.open()
    assert calls[0] == 1
    assert "\n" not in str(info.value)


def test_wrong_token_is_refused_at_once(jupyter_server, proto_kernel):
    rest = RestClient(proto_kernel.server.url, "not-the-token")
    channel = KernelChannel(rest, proto_kernel.id)
    calls = count_connects(channel)
    with pytest.raises(AuthenticationError) as info:
        channel.open()
    assert calls[0] == 1
    assert "not-the-token" not in str(info.value) and jupyter_server.token not in str(info.value)


def test_reconnect_stops_at_once_when_the_handshake_is_refused(jupyter_server):
    server = Server(jupyter_server.url, jupyter_server.token)
    kernel = server.start_kernel()
    try:
        kernel.run("pass")
        channel = kernel.channel
        calls = count_connects(channel)
        channel._rest.auth._token = "revoked"  # the token stops being valid while connected
        break_socket(channel)
        with pytest.raises(AuthenticationError):
            kernel.channel.request("kernel_info_request", {}, timeout=30)
        assert calls[0] == 1  # one refused handshake, no retries
        assert channel.reconnects == 0
        assert channel.is_closed
    finally:
        Server(jupyter_server.url, jupyter_server.token).kernels.shutdown(kernel.id)
        server.close()


def test_kernel_shut_down_elsewhere_mid_cell_raises_not_found(jupyter_server):
    # The server keeps the websocket of a deleted kernel open and silent: without a check the
    # cell would wait forever.
    server = Server(jupyter_server.url, jupyter_server.token)
    kernel = server.start_kernel()
    other = Server(jupyter_server.url, jupyter_server.token)
    try:
        seen = []
        with pytest.raises(NotFound) as info:
            for msg in kernel.execute("print('working', flush=True)\nimport time\ntime.sleep(120)"):
                seen.append(msg)
                if msg["msg_type"] == "stream":
                    other.kernels.shutdown(kernel.id)
        assert "\n" not in str(info.value) and kernel.id in str(info.value)
        assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["working\n"]
        assert kernel.channel.reconnects == 0
        with pytest.raises(NotFound):
            kernel.run("pass")
    finally:
        other.close()
        server.close()


def test_a_long_silent_cell_is_not_taken_for_a_restart(proto_kernel, monkeypatch):
    monkeypatch.setattr(exchange_module, "LIVENESS_INTERVAL", 0.3)  # check often while it sleeps
    result = proto_kernel.run("import time\ntime.sleep(2)\nprint('done')", timeout=60)
    assert result.text() == "done\n"
    assert proto_kernel.channel.probes_answered >= 3  # the kernel was asked, and answered as itself


def test_kernel_restarted_elsewhere_mid_cell_raises_kernel_died(jupyter_server, fresh_kernel):
    # A restart through the REST API sends no status on the websocket: without a check the cell
    # would wait for a reply the old kernel process will never send.
    other = Server(jupyter_server.url, jupyter_server.token)
    try:
        seen = []
        with pytest.raises(KernelDied) as info:
            for msg in fresh_kernel.execute("print('working', flush=True)\nimport time\ntime.sleep(120)", timeout=90):
                seen.append(msg)
                if msg["msg_type"] == "stream":
                    other.kernels.restart(fresh_kernel.id)
        assert "\n" not in str(info.value) and "restarted" in str(info.value)
        assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["working\n"]
        assert fresh_kernel.run("print('fresh')", timeout=60).text() == "fresh\n"
    finally:
        other.close()


def test_reconnect_to_a_deleted_kernel_stops_at_the_404(jupyter_server):
    server = Server(jupyter_server.url, jupyter_server.token)
    kernel = server.start_kernel()
    kernel.run("pass")
    channel = kernel.channel
    calls = count_connects(channel)
    server.kernels.shutdown(kernel.id)
    break_socket(channel)
    with pytest.raises(NotFound):
        channel.request("kernel_info_request", {}, timeout=30)
    assert channel.is_closed
    assert calls[0] == 1 and channel.reconnects == 0  # one refused handshake, no retries
    server.close()


def test_a_kernel_interrupted_by_someone_else_is_checked_and_reported_as_an_interrupt(jupyter_server, fresh_kernel):
    # A restart by another client interrupts first; a plain interrupt by another client must not be
    # taken for one: the channel asks which process answers, and it is still the same.
    other = Server(jupyter_server.url, jupyter_server.token)
    try:
        before = fresh_kernel.channel.probes_answered
        messages = []
        for msg in fresh_kernel.execute("print('working', flush=True)\nimport time\ntime.sleep(120)", timeout=90):
            messages.append(msg)
            if msg["msg_type"] == "stream":
                other.kernels.interrupt(fresh_kernel.id)
        reply = [m for m in messages if m["channel"] == "shell"][-1]
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert fresh_kernel.channel.probes_answered > before  # confirmed with the kernel, not assumed
        assert fresh_kernel.run("print('same kernel')", timeout=60).text() == "same kernel\n"
    finally:
        other.close()


def test_a_shutdown_reply_broadcast_by_the_kernel_reaches_every_pending_request():
    from remote_magic.protocol import new_message
    from remote_magic.router import Event, Router

    router = Router()
    pending = router.open(new_message("execute_request", {}, session="me"))
    for restart, state in ((True, "restarting"), (False, "shutdown")):
        reply = new_message("shutdown_reply", {"restart": restart}, session="server", channel="iopub")
        router.route(reply)
        event = pending.inbox.get_nowait()
        assert isinstance(event, Event) and event.kind == "gone" and event.detail["state"] == state
