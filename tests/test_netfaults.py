"""The network fault tools of tests/netfaults.py, against the real server fixture."""

from __future__ import annotations

import socket
import time
from contextlib import closing

import pytest
import websocket
from netfaults import TcpForwarder
from wsrelay import CORRUPTIONS, WebSocketRelay

from remote_magic import Server, protocol
from remote_magic.errors import ProtocolError

REQUEST = b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # answered without a token


def connect(forwarder: TcpForwarder) -> socket.socket:
    return socket.create_connection(("127.0.0.1", forwarder.port), timeout=10)


def response(sock: socket.socket) -> bytes:
    """One HTTP response (headers and Content-Length body); fails on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return lines[0] + b" " + body


def ask(sock: socket.socket) -> bytes:
    sock.sendall(REQUEST)
    return response(sock)


def assert_silent_and_open(sock: socket.socket, window: float = 1.0) -> None:
    """Nothing arrives within ``window`` seconds, and the connection is not closed (no EOF, no RST)."""
    sock.settimeout(window)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    sock.settimeout(10)


# ---------------------------------------------------------------------------------- TcpForwarder


@pytest.mark.parametrize("delay, piece", [(0.02, 0), (0.0, 3)], ids=["delayed", "in 3-byte pieces"])
def test_forwarder_carries_a_kernel_in_order_with_the_delay_and_pieces(jupyter_server, delay, piece):
    with TcpForwarder.to_url(jupyter_server.url, delay=delay, piece=piece) as forwarder:
        server = Server(forwarder.url_for(jupyter_server.url), jupyter_server.token)
        kernel = server.start_kernel()
        try:
            result = kernel.run("for i in range(2000): print(i)\n1+1")
        finally:
            kernel.shutdown()
            server.close()
        text = "".join(out["text"] for out in result.outputs if out["output_type"] == "stream")
        assert text == "".join(f"{i}\n" for i in range(2000))
        assert result.outputs[-1]["data"]["text/plain"] == "2"
        assert forwarder.bytes_up > 1000 and forwarder.bytes_down > 2000 * 4


def test_url_for_swaps_only_host_and_port():
    with TcpForwarder("127.0.0.1", 9) as forwarder:
        assert forwarder.url_for("https://example.org:8888/user/a/lab?x=1") == (
            f"https://127.0.0.1:{forwarder.port}/user/a/lab?x=1"
        )


def test_delay_adds_at_least_the_delay_each_way(jupyter_server):
    with TcpForwarder.to_url(jupyter_server.url, delay=0.3) as forwarder:
        sock = connect(forwarder)
        start = time.monotonic()
        assert ask(sock).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - start >= 0.6  # a lower bound: the request and the answer each wait
        forwarder.delay = 0.0
        assert ask(sock).startswith(b"HTTP/1.1 200")  # settable; order kept
        sock.close()


def test_freeze_holds_traffic_without_closing_and_thaw_leaves_those_connections_dead(jupyter_server):
    with TcpForwarder.to_url(jupyter_server.url) as forwarder:
        frozen = connect(forwarder)
        assert ask(frozen).startswith(b"HTTP/1.1 200")
        forwarder.freeze()
        sent = forwarder.bytes_up
        frozen.sendall(REQUEST)
        assert_silent_and_open(frozen)
        assert forwarder.bytes_up == sent and forwarder.connections == 1
        waiting = connect(forwarder)  # made while frozen: waits in the listen backlog
        waiting.sendall(REQUEST)
        assert_silent_and_open(waiting, 0.5)

        forwarder.thaw()
        assert response(waiting).startswith(b"HTTP/1.1 200")
        assert_silent_and_open(frozen)  # the link is back, that connection is not
        frozen.sendall(REQUEST)
        assert_silent_and_open(frozen)
        assert forwarder.bytes_up == sent + len(REQUEST)  # only the waiting connection's request
        fresh = connect(forwarder)
        assert ask(fresh).startswith(b"HTTP/1.1 200")
        for sock in (frozen, waiting, fresh):
            sock.close()


def test_cut_resets_every_connection_and_keeps_accepting(jupyter_server):
    with TcpForwarder.to_url(jupyter_server.url) as forwarder:
        socks = [connect(forwarder) for _ in range(2)]
        for sock in socks:
            assert ask(sock).startswith(b"HTTP/1.1 200")
        forwarder.cut()
        for sock in socks:
            with pytest.raises(ConnectionResetError):  # an RST, not a FIN
                sock.recv(1)
        assert forwarder.connections == 0
        sock = connect(forwarder)
        assert ask(sock).startswith(b"HTTP/1.1 200")
        sock.close()


def test_close_stops_listening(jupyter_server):
    forwarder = TcpForwarder.to_url(jupyter_server.url)
    sock = connect(forwarder)
    assert ask(sock).startswith(b"HTTP/1.1 200")
    forwarder.close()
    with pytest.raises(ConnectionRefusedError):
        connect(forwarder)
    with pytest.raises(ConnectionResetError):
        sock.recv(1)


# ---------------------------------------------------------------------------------- WebSocketRelay


@pytest.fixture(scope="module")
def relay(jupyter_server):
    with WebSocketRelay(jupyter_server.url) as running:
        yield running


@pytest.fixture(scope="module")
def kernel_id(jupyter_server):
    server = Server(jupyter_server.url, jupyter_server.token)
    kernel = server.start_kernel()
    yield kernel.id
    kernel.shutdown()
    server.close()


def open_websocket(relay: WebSocketRelay, kernel_id: str, token: str, v1: bool) -> websocket.WebSocket:
    path = f"api/kernels/{kernel_id}/channels?session_id={protocol.new_session_id()}"
    url = relay.url.replace("http", "ws", 1) + path
    return websocket.create_connection(
        url,
        header=[f"Authorization: token {token}"],
        subprotocols=[protocol.V1_SUBPROTOCOL] if v1 else None,
        timeout=30,
        skip_utf8_validation=True,
    )


def kernel_info_request() -> protocol.Message:
    return protocol.new_message("kernel_info_request", {}, session=protocol.new_session_id())


def exchange(
    ws: websocket.WebSocket, v1: bool, request: protocol.Message | None = None
) -> tuple[list[protocol.Message], list[ProtocolError]]:
    """Send a kernel_info_request; read until its idle status and one more answer (the reply, or
    a frame the decoders reject). Returns the decoded messages of that request and the rejections."""
    request = request or kernel_info_request()
    if v1:
        ws.send(protocol.encode_v1(request), websocket.ABNF.OPCODE_BINARY)
    else:
        ws.send(protocol.encode_legacy(request))
    messages, rejected = [], []
    for _ in range(50):
        opcode, data = ws.recv_data()
        try:
            msg = protocol.decode_frame(data, text=opcode == websocket.ABNF.OPCODE_TEXT, v1=v1)
            if protocol.parent_msg_id(msg) == request["msg_id"]:
                messages.append(msg)
        except ProtocolError as exc:
            rejected.append(exc)
        idle = any(m["content"].get("execution_state") == "idle" for m in messages)
        if idle and (rejected or any(m["msg_type"] == "kernel_info_reply" for m in messages)):
            return messages, rejected
    raise AssertionError(f"no idle status among 50 frames: {messages}")


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
def test_relay_carries_rest_and_a_kernel_websocket(jupyter_server, relay, v1):
    server = Server(relay.url, jupyter_server.token, protocol="v1" if v1 else "legacy")
    kernel = server.start_kernel()  # REST through the relay
    try:
        assert kernel.run("1+1").outputs[0]["data"]["text/plain"] == "2"
    finally:
        kernel.shutdown()
        server.close()


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
def test_relay_selects_what_the_server_selected(jupyter_server, relay, kernel_id, v1):
    with closing(open_websocket(relay, kernel_id, jupyter_server.token, v1)) as ws:
        assert ws.getsubprotocol() == (protocol.V1_SUBPROTOCOL if v1 else None)
        messages, rejected = exchange(ws, v1)
        assert not rejected and "kernel_info_reply" in [m["msg_type"] for m in messages]


def test_relay_passes_the_servers_refusal_on(jupyter_server, relay, kernel_id):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        open_websocket(relay, kernel_id, "not-the-token", True)
    assert refused.value.status_code == 403


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_next_sends_one_frame_the_decoders_reject(jupyter_server, relay, kernel_id, kind):
    v1 = kind.startswith("v1")
    with closing(open_websocket(relay, kernel_id, jupyter_server.token, v1)) as ws:
        request = kernel_info_request()
        msg_id = request["msg_id"].encode()
        relay.corrupt_next(kind, when=lambda frame: b"kernel_info_reply" in frame and msg_id in frame)
        messages, rejected = exchange(ws, v1, request)
        assert len(rejected) == 1 and relay.pending_faults == 0
        assert [m["msg_type"] for m in messages] == ["status", "status"]  # the rest still flows
        messages, rejected = exchange(ws, v1)  # and the next request is untouched
        assert not rejected and "kernel_info_reply" in [m["msg_type"] for m in messages]


def test_drop_next_drops_only_the_frames_asked(jupyter_server, relay, kernel_id):
    with closing(open_websocket(relay, kernel_id, jupyter_server.token, True)) as ws:
        requests = [kernel_info_request() for _ in range(3)]
        ids = [request["msg_id"].encode() for request in requests]
        relay.drop_next(2, when=lambda frame: b'"execution_state": "busy"' in frame and any(i in frame for i in ids))
        for request in requests[:2]:
            messages, rejected = exchange(ws, True, request)
            states = [m["content"].get("execution_state") for m in messages if m["msg_type"] == "status"]
            assert states == ["idle"] and "kernel_info_reply" in [m["msg_type"] for m in messages]
        assert relay.pending_faults == 0
        messages, _ = exchange(ws, True, requests[2])
        assert [m["content"].get("execution_state") for m in messages if m["msg_type"] == "status"] == ["busy", "idle"]


def frames_until_reply(ws: websocket.WebSocket, msg_id: bytes) -> list[websocket.ABNF]:
    """Raw frames (fragments not joined) up to the end of the message that carries ``msg_id``."""
    frames, message = [], b""
    for _ in range(100):
        frame = ws.recv_frame()
        frames.append(frame)
        if frame.opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CONT):
            message += frame.data
            if frame.fin:
                if b"kernel_info_reply" in message and msg_id in message:
                    return frames
                frames, message = [], b""
    raise AssertionError("no kernel_info_reply among 100 frames")


def test_fragment_next_sends_one_message_in_fragments_with_a_ping_between(jupyter_server, relay, kernel_id, wait_until):
    with closing(open_websocket(relay, kernel_id, jupyter_server.token, True)) as ws:
        request = kernel_info_request()
        msg_id = request["msg_id"].encode()
        relay.fragment_next(3, ping=b"between", when=lambda frame: b"kernel_info_reply" in frame and msg_id in frame)
        ws.send(protocol.encode_v1(request), websocket.ABNF.OPCODE_BINARY)
        frames = frames_until_reply(ws, msg_id)
        opcodes = [(frame.opcode, frame.fin) for frame in frames]
        assert opcodes == [(0x2, 0), (0x9, 1), (0x0, 0), (0x0, 1)] and frames[1].data == b"between"
        reply = protocol.decode_v1(b"".join(frame.data for frame in frames if frame.opcode != 0x9))
        assert reply["msg_type"] == "kernel_info_reply" and relay.pending_faults == 0
        ws.pong(frames[1].data)  # websocket-client answers pings in recv_data, not in recv_frame
        wait_until(lambda: b"between" in relay.pongs, timeout=10, message="the pong")


def test_mask_next_sends_one_frame_masked(jupyter_server, relay, kernel_id):
    with closing(open_websocket(relay, kernel_id, jupyter_server.token, True)) as ws:
        request = kernel_info_request()
        msg_id = request["msg_id"].encode()
        relay.mask_next(when=lambda frame: b"kernel_info_reply" in frame and msg_id in frame)
        ws.send(protocol.encode_v1(request), websocket.ABNF.OPCODE_BINARY)
        (frame,) = frames_until_reply(ws, msg_id)
        assert frame.mask_value  # websocket-client takes it, unmasked
        assert protocol.decode_v1(frame.data)["msg_type"] == "kernel_info_reply"
        messages, rejected = exchange(ws, True)  # the next ones are not masked
        assert not rejected and "kernel_info_reply" in [m["msg_type"] for m in messages]
