"""A Jupyter Server in front of a real one, for faults a real server never produces: it relays REST
and kernel websockets (on 127.0.0.1 only) and can corrupt, drop, fragment or mask chosen
server→client frames."""

from __future__ import annotations

import asyncio
import collections
import functools
import struct
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect


def _raw(frame: str | bytes) -> bytes:
    return frame.encode("utf-8") if isinstance(frame, str) else frame


def _v1_table(data: bytes) -> list[int] | None:
    """A v1 frame's offsets, or None if ``data`` does not start with a table that fits."""
    count = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
    if not 3 <= count or 8 * (count + 1) > len(data):
        return None
    return list(struct.unpack_from(f"<{count}Q", data, 8))


def _v1_offsets(frame: str | bytes) -> tuple[bytes, int]:
    """A v1 frame whose last offset points past its end."""
    data = bytearray(_raw(frame))
    table = _v1_table(bytes(data))
    if table is None:
        return struct.pack("<7Q", 6, 56, *[2**40] * 5), 0x2
    struct.pack_into("<Q", data, 8 * len(table), len(data) + 1000)
    return bytes(data), 0x2


def _v1_json(frame: str | bytes) -> tuple[bytes, int]:
    """A v1 frame whose header part is not JSON."""
    data = bytearray(_raw(frame))
    table = _v1_table(bytes(data))
    if table is None or not table[1] < table[2] <= len(data):
        return _v1_offsets(frame)
    data[table[1]] = ord("!")
    return bytes(data), 0x2


#: kind -> frame -> (malformed frame, websocket opcode). ``v1-*`` kinds are malformed for a v1
#: connection, ``legacy-*`` ones for a legacy connection.
CORRUPTIONS: dict[str, Callable[[str | bytes], tuple[bytes, int]]] = {
    "v1-offsets": _v1_offsets,
    "v1-json": _v1_json,
    "v1-truncated": lambda frame: (_raw(frame)[: len(frame) // 2], 0x2),
    "legacy-json": lambda frame: ((frame if isinstance(frame, str) else "{}")[:-1].encode("utf-8"), 0x1),
    "legacy-utf8": lambda frame: (b'{"header": "\xff\xfe"}', 0x1),
    "legacy-offsets": lambda frame: (struct.pack("!II", 2**31, 8) + _raw(frame), 0x2),
    "legacy-array": lambda frame: (b"[]", 0x1),
    "legacy-no-header": lambda frame: (b'{"channel": "iopub", "content": {}}', 0x1),
}

def ws_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = b"", rsv: int = 0, length: int | None = None
) -> bytes:
    """One websocket frame as it goes on the wire (RFC 6455 5.2): ``mask`` a 4-byte key (only a
    client may mask), ``rsv`` the reserved bits (0-7), ``length`` the length announced if not the
    payload's."""
    length = len(payload) if length is None else length
    mask_bit = 0x80 if mask else 0
    if length < 126:
        size = bytes([mask_bit | length])
    elif length < 2**16:
        size = bytes([mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        size = bytes([mask_bit | 127]) + length.to_bytes(8, "big")
    if mask:
        key = (mask * (len(payload) // 4 + 1))[: len(payload)]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(len(payload), "big")
    return bytes([(0x80 if fin else 0) | rsv << 4 | opcode]) + size + mask + payload


def _fragmented(payload: bytes, opcode: int, *, pieces: int, ping: bytes | None) -> bytes:
    """A message as ``pieces`` fragments, with a ping carrying ``ping`` after the first if given."""
    size = max(1, -(-len(payload) // pieces))
    parts = [payload[start : start + size] for start in range(0, len(payload), size)] or [b""]
    frames = []
    for index, part in enumerate(parts):
        frames.append(ws_frame(opcode if index == 0 else 0x0, part, fin=index == len(parts) - 1))
        if index == 0 and ping is not None:
            frames.append(ws_frame(0x9, ping))
    return b"".join(frames)


def _masked(payload: bytes, opcode: int) -> bytes:
    return ws_frame(opcode, payload, mask=b"\x5a\x13\xc7\x08")


_HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "origin"}


class WebSocketRelay:
    """A server on 127.0.0.1 (:attr:`url`) relaying REST and kernel websockets to a real Jupyter
    Server, headers (``Authorization``, cookies) and the websocket subprotocol passed through: the
    client's offer goes upstream and the relay selects what upstream selected.

    :meth:`corrupt_next` and :meth:`drop_next` act on server→client websocket frames of any relayed
    kernel (optionally only frames for which ``when(frame_bytes)`` is true); everything else passes.
    Runs its own IOLoop in a thread; :meth:`close` (or leaving the ``with`` block) stops it.
    """

    def __init__(self, upstream_url: str):
        parts = urlsplit(upstream_url)
        self._upstream = f"{parts.scheme}://{parts.netloc}"
        self._upstream_ws = ("wss" if parts.scheme == "https" else "ws") + f"://{parts.netloc}"
        self._sockets = bind_sockets(0, "127.0.0.1")
        self.port: int = self._sockets[0].getsockname()[1]
        self.url = urlunsplit(("http", f"127.0.0.1:{self.port}", parts.path or "/", "", ""))
        self.frames = 0  # server→client frames relayed (corrupted ones included, dropped ones not)
        self.pongs: list[bytes] = []  # the payloads of the pongs clients sent
        self._faults: collections.deque[list[Any]] = collections.deque()
        self._lock = threading.Lock()
        self._handlers: set[Any] = set()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="websocket-relay", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the websocket relay did not start within 10s")

    def corrupt_next(self, kind: str, when: Callable[[bytes], bool] | None = None) -> None:
        """Replace the next server→client frame (matching ``when``) with a malformed one of
        ``kind`` (a key of :data:`CORRUPTIONS`)."""
        if kind not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {kind!r}; pick one of {sorted(CORRUPTIONS)}")
        with self._lock:
            self._faults.append([kind, 1, when])

    def drop_next(self, n: int = 1, when: Callable[[bytes], bool] | None = None) -> None:
        """Drop the next ``n`` server→client frames (matching ``when``)."""
        with self._lock:
            self._faults.append(["drop", n, when])

    def fragment_next(self, pieces: int, ping: bytes | None = None, when: Callable[[bytes], bool] | None = None) -> None:
        """Send the next server→client message (matching ``when``) as ``pieces`` fragments, with a
        ping carrying ``ping`` between the first two if given (its pong lands in :attr:`pongs`)."""
        with self._lock:
            self._faults.append([functools.partial(_fragmented, pieces=pieces, ping=ping), 1, when])

    def mask_next(self, when: Callable[[bytes], bool] | None = None) -> None:
        """Send the next server→client frame (matching ``when``) masked, as only a client may."""
        with self._lock:
            self._faults.append([_masked, 1, when])

    @property
    def pending_faults(self) -> int:
        """Frames still to corrupt or drop."""
        with self._lock:
            return sum(fault[1] for fault in self._faults)

    def _take_fault(self, frame: str | bytes) -> str | Callable[[bytes, int], bytes] | None:
        with self._lock:
            for fault in self._faults:
                if fault[2] is None or fault[2](_raw(frame)):
                    fault[1] -= 1
                    if not fault[1]:
                        self._faults.remove(fault)
                    return fault[0]
        return None

    # ------------------------------------------------------------------ the IOLoop thread

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _start(self) -> None:
        app = Application(
            [(r"(.*)/api/kernels/([^/]+)/channels", _Channels, {"relay": self}), (r".*", _Rest, {"relay": self})],
            websocket_max_message_size=2**30,
            log_function=lambda handler: None,  # no access log
        )
        self._http = AsyncHTTPClient(force_instance=True, max_body_size=2**30)
        self._server = HTTPServer(app, max_body_size=2**30)
        self._server.add_sockets(self._sockets)

    async def _stop(self) -> None:
        self._server.stop()
        for handler in list(self._handlers):
            handler.close()
        try:
            await asyncio.wait_for(self._server.close_all_connections(), 5)
        except asyncio.TimeoutError:
            pass  # a connection that will not close: the loop stops anyway
        self._http.close()

    def close(self) -> None:
        """Close every relayed connection and stop the IOLoop thread (bounded waits)."""
        if self._loop.is_closed() or not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> WebSocketRelay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _upstream_headers(handler: RequestHandler) -> HTTPHeaders:
    headers = HTTPHeaders()
    for name, value in handler.request.headers.get_all():
        if name.lower() not in _HOP_BY_HOP and not name.lower().startswith("sec-websocket"):
            headers.add(name, value)
    return headers


class _Channels(WebSocketHandler):
    def initialize(self, relay: WebSocketRelay) -> None:
        self.relay = relay
        self.upstream = None

    def check_origin(self, origin: str) -> bool:
        return True

    async def get(self, *args: Any) -> None:
        offered = [p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        request = HTTPRequest(
            self.relay._upstream_ws + self.request.uri,
            headers=_upstream_headers(self),
            connect_timeout=10,
            request_timeout=120,  # the server holds the handshake until the kernel answers
        )
        try:
            self.upstream = await websocket_connect(request, subprotocols=offered or None, max_message_size=2**30)
        except HTTPClientError as exc:
            self.set_status(exc.code)
            return self.finish()
        except OSError:
            self.set_status(502)
            return self.finish()
        await super().get(*args)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.upstream.selected_subprotocol

    def open(self, *args: Any) -> None:
        self.relay._handlers.add(self)
        asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        while True:
            frame = await self.upstream.read_message()
            if frame is None:
                break
            fault = self.relay._take_fault(frame)
            if fault == "drop":
                continue
            self.relay.frames += 1
            try:
                if fault is None:
                    await self.write_message(frame, binary=isinstance(frame, bytes))
                elif callable(fault):  # the frame re-framed: written as raw bytes
                    await self.ws_connection.stream.write(fault(_raw(frame), 0x2 if isinstance(frame, bytes) else 0x1))
                else:
                    data, opcode = CORRUPTIONS[fault](frame)
                    await self.ws_connection._write_frame(True, opcode, data)  # any bytes, even as text
            except (WebSocketClosedError, StreamClosedError):
                break
        self.close()

    async def on_message(self, message: str | bytes) -> None:
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            self.close()

    def on_pong(self, data: bytes) -> None:
        self.relay.pongs.append(data)

    def on_close(self) -> None:
        self.relay._handlers.discard(self)
        if self.upstream is not None:
            self.upstream.close()


class _Rest(RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, relay: WebSocketRelay) -> None:
        self.relay = relay

    async def _relay(self, *args: Any) -> None:
        method = self.request.method
        request = HTTPRequest(
            self.relay._upstream + self.request.uri,
            method=method,
            headers=_upstream_headers(self),
            body=self.request.body if method in ("POST", "PATCH", "PUT") else None,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            request_timeout=300,
        )
        response = await self.relay._http.fetch(request, raise_error=False)
        if response.code == 599:  # no answer from upstream
            self.set_status(502)
            return self.finish()
        self.set_status(response.code, response.reason)
        for name in ("Content-Type", "Server", "Date"):
            self.clear_header(name)
        for name, value in response.headers.get_all():
            if name.lower() not in _HOP_BY_HOP:
                self.add_header(name, value)
        if response.body:
            self.write(response.body)
        self.finish()

    get = head = post = delete = patch = put = options = _relay
