"""Network faults for tests and benchmarks, on 127.0.0.1 only: threads, bounded waits, clean shutdown.

:class:`TcpForwarder` stands for an SSH tunnel or a plain proxy: it forwards bytes both ways and can
add latency, freeze (a dead VPN, a suspended laptop, a proxy that froze) or cut every connection.
:class:`wsrelay.WebSocketRelay` corrupts or drops chosen websocket frames.
"""

from __future__ import annotations

import queue
import select
import socket
import struct
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
                        sent = dst.send(view[: self.forwarder.piece or len(view)], socket.MSG_DONTWAIT)
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
    - ``piece``: when set, bytes go on in sends of at most this many, each its own TCP segment
      (``TCP_NODELAY``), so that a reader gets messages in small pieces (settable at any time).
    - :meth:`freeze`: the link stops forwarding both ways without closing anything: bytes stay in
      the socket buffers (held), peers see no FIN or RST. Connections made while frozen wait in the
      listen backlog.
    - :meth:`thaw`: the link is back, but connections frozen with it stay dead, as after a VPN
      reconnect: their held bytes are dropped, whatever arrives later is read and dropped, and their
      sockets stay open (until :meth:`cut`/:meth:`close`); new connections work normally.
    - :meth:`cut`: resets (RST) every current connection; new ones are still accepted.
    - :attr:`bytes_up` / :attr:`bytes_down`: bytes forwarded client→target / target→client.
    """

    def __init__(self, target_host: str, target_port: int, delay: float = 0.0, piece: int = 0):
        self.target = (target_host, target_port)
        self.delay = delay
        self.piece = piece
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
    def to_url(cls, url: str, delay: float = 0.0, piece: int = 0) -> TcpForwarder:
        """A forwarder to the host and port of an http(s) URL."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80), delay, piece)

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
