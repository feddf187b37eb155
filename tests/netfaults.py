"""Network faults for tests and benchmarks, on 127.0.0.1 only: threads, bounded waits, clean shutdown.

:class:`TcpForwarder` stands for an SSH tunnel or a plain proxy: it forwards bytes both ways and can
add latency, freeze (a dead VPN, a suspended laptop, a proxy that froze) or cut every connection.
:class:`WebSocketRelay` stands for a Jupyter Server in front of a real one: it relays REST and kernel
websockets and can corrupt or drop chosen server→client frames, which a real server never sends.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect

_POLL = 0.2  # how often idle threads look at their flags: bounds how long close() waits
_CHUNK = 65536


def _ready(sock: socket.socket, event: int, timeout: float = _POLL) -> bool:
    """Whether ``sock`` becomes readable/writable (``select.POLLIN``/``POLLOUT``) within ``timeout``."""
    poller = select.poll()
    poller.register(sock, event)
    return bool(poller.poll(timeout * 1000))


def _reset(sock: socket.socket) -> None:
    """Close abruptly: an RST, not a FIN (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # already closed by the peer
    sock.close()


class _Link:
    """One client connection and its upstream socket: per direction, a reader thread queues
    (due time, chunk) pairs and a sender thread sends each when due, in order."""

    def __init__(self, forwarder: TcpForwarder, client: socket.socket, upstream: socket.socket):
        self.forwarder = forwarder
        self.sockets = (client, upstream)
        self.frozen = False  # held: nothing read, nothing sent
        self.dead = False  # frozen, then thawed: whatever is read is dropped, nothing is sent
        self.closed = False
        self._ended = 0  # directions that passed their end (a FIN) on
        self.threads = []
        for src, dst, counter in ((client, upstream, "bytes_up"), (upstream, client, "bytes_down")):
            chunks: queue.Queue = queue.Queue(maxsize=256)  # bounded: a slow side holds the reader
            self.threads += [
                threading.Thread(target=self._read, args=(src, chunks), daemon=True),
                threading.Thread(target=self._send, args=(dst, chunks, counter), daemon=True),
            ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _read(self, src: socket.socket, chunks: queue.Queue) -> None:
        try:
            while not self.closed:
                if self.frozen:
                    self.forwarder._thawed.wait(_POLL)
                    continue
                if not _ready(src, select.POLLIN):
                    continue
                data = src.recv(_CHUNK)
                if self.dead:
                    if not data:
                        return  # a dead link passes nothing on, not even the end
                    continue
                self._put(chunks, (time.monotonic() + self.forwarder.delay, data))
                if not data:
                    return
        except (OSError, ValueError):  # reset by a peer, or closed under us
            if not self.closed:
                self.forwarder._drop(self)

    def _put(self, chunks: queue.Queue, item: tuple[float, bytes]) -> None:
        while not self.closed:
            try:
                return chunks.put(item, timeout=_POLL)
            except queue.Full:
                continue

    def _send(self, dst: socket.socket, chunks: queue.Queue, counter: str) -> None:
        try:
            while not self.closed:
                try:
                    due, data = chunks.get(timeout=_POLL)
                except queue.Empty:
                    continue
                while not self.closed and (self.frozen or time.monotonic() < due):
                    time.sleep(min(_POLL, max(due - time.monotonic(), 0.001)))
                if self.dead or self.closed:
                    continue
                if not data:
                    self._end(dst)
                    continue
                view = memoryview(data)
                while view and not self.closed and not self.frozen:
                    if _ready(dst, select.POLLOUT):
                        sent = dst.send(view, socket.MSG_DONTWAIT)
                        view = view[sent:]
                        self.forwarder._count(counter, sent)
        except (OSError, ValueError):  # reset by a peer, or closed under us
            if not self.closed:
                self.forwarder._drop(self)

    def _end(self, dst: socket.socket) -> None:
        """One side finished: pass its FIN on; once both have, close the link."""
        dst.shutdown(socket.SHUT_WR)
        with self.forwarder._lock:
            self._ended += 1
            finished = self._ended == 2
        if finished:
            self.forwarder._drop(self, graceful=True)

    def close(self, graceful: bool = False) -> None:
        self.closed = True
        for sock in self.sockets:
            if graceful:
                sock.close()
            else:
                _reset(sock)


class TcpForwarder:
    """Listens on 127.0.0.1 (:attr:`port`) and forwards each connection to the target, both ways.

    - ``delay``: seconds added to each chunk in each direction, order kept (settable at any time).
    - :meth:`freeze`: the link stops forwarding both ways without closing anything: bytes stay in
      the socket buffers (held), peers see no FIN or RST. Connections made while frozen wait in the
      listen backlog.
    - :meth:`thaw`: the link is back, but connections frozen with it stay dead, as after a VPN
      reconnect: their held bytes are dropped, whatever arrives later is read and dropped, and their
      sockets stay open (until :meth:`cut`/:meth:`close`); new connections work normally.
    - :meth:`cut`: resets (RST) every current connection; new ones are still accepted.
    - :attr:`bytes_up` / :attr:`bytes_down`: bytes forwarded client→target / target→client.
    """

    def __init__(self, target_host: str, target_port: int, delay: float = 0.0):
        self.target = (target_host, target_port)
        self.delay = delay
        self.bytes_up = 0
        self.bytes_down = 0
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._thawed = threading.Event()
        self._thawed.set()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcp-forwarder", daemon=True)
        self._acceptor.start()

    @classmethod
    def to_url(cls, url: str, delay: float = 0.0) -> TcpForwarder:
        """A forwarder to the host and port of an http(s) URL."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80), delay)

    def url_for(self, url: str) -> str:
        """``url`` with its host:port replaced by this forwarder's (scheme, path and query kept)."""
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.port}"))

    @property
    def connections(self) -> int:
        """How many connections are open (dead ones included)."""
        with self._lock:
            return len(self._links)

    def _accept_loop(self) -> None:
        while not self._closed:
            if not self._thawed.is_set():
                self._thawed.wait(_POLL)
                continue
            try:
                if not _ready(self._listener, select.POLLIN):
                    continue
                client, _ = self._listener.accept()
            except (OSError, ValueError):
                continue  # closed: the loop ends
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _reset(client)  # the target is down: refuse as it would
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                if self._closed:
                    link.close()
                    return
                self._links.add(link)
            link.start()

    def _count(self, counter: str, sent: int) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + sent)

    def _drop(self, link: _Link, graceful: bool = False) -> None:
        with self._lock:
            self._links.discard(link)
        link.close(graceful)

    def freeze(self) -> None:
        """Stop forwarding both ways; close nothing."""
        with self._lock:
            self._thawed.clear()
            for link in self._links:
                link.frozen = True

    def thaw(self) -> None:
        """Forward again: new connections work; the frozen ones stay dead (see the class doc)."""
        with self._lock:
            for link in self._links:
                if link.frozen:
                    link.dead, link.frozen = True, False
            self._thawed.set()

    def cut(self) -> None:
        """Reset every current connection (RST); keep accepting new ones."""
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.close()

    def close(self) -> None:
        """Stop listening, reset every connection and wait (bounded) for the threads to end."""
        with self._lock:
            self._closed = True
            links = list(self._links)
        self._thawed.set()
        self._listener.close()
        self.cut()
        for thread in [self._acceptor, *(t for link in links for t in link.threads)]:
            thread.join(timeout=2 * _POLL + 1)

    def __enter__(self) -> TcpForwarder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------- websocket relay


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

    @property
    def pending_faults(self) -> int:
        """Frames still to corrupt or drop."""
        with self._lock:
            return sum(fault[1] for fault in self._faults)

    def _take_fault(self, frame: str | bytes) -> str | None:
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
                else:
                    data, opcode = CORRUPTIONS[fault](frame)
                    await self.ws_connection._write_frame(True, opcode, data)  # any bytes, even as text
            except WebSocketClosedError:
                break
        self.close()

    async def on_message(self, message: str | bytes) -> None:
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            self.close()

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
