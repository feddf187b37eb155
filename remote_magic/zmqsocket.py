"""The ZMQ sockets of a kernel known by its connection file, behind the same calls as the
kernel websocket (:class:`~remote_magic.wire.KernelSocket`): ``send(msg)``, ``wait(seconds)`` and
``receive()``.

Only the thread whose turn it is to read touches the ZMQ sockets (they are not thread-safe):
:meth:`send` queues the message and wakes the reader through a pipe; :meth:`receive` sends what is
queued and returns the next message from shell, control, stdin or iopub, as the same dicts the
websocket yields.
"""

from __future__ import annotations

import collections
import os
import queue
from datetime import datetime
from typing import Any

from .errors import ConnectionLost, UsageError
from .protocol import Message

_CHANNELS = ("shell", "control", "stdin", "iopub")


def jupyter_client_module() -> Any:
    """``jupyter_client``, or a one-line error saying how to get it."""
    try:
        import jupyter_client
        import zmq  # noqa: F401
    except ImportError:
        raise UsageError(
            "Kernels reached through their connection file need jupyter_client: pip install 'remote_magic[existing]'."
        ) from None
    return jupyter_client


class ZmqSocket:
    """The four channels of one kernel; ``connection_info`` is a loaded connection file."""

    def __init__(self, connection_info: dict[str, Any], kernel_id: str, session_id: str):
        jupyter_client = jupyter_client_module()
        import zmq

        self.kernel_id = kernel_id
        self.v1 = False  # what a websocket reports; meaningless here
        self._session = jupyter_client.session.Session(
            key=str(connection_info.get("key", "")).encode(),
            signature_scheme=connection_info.get("signature_scheme", "hmac-sha256"),
            session=session_id,
            username="remote_magic",
        )
        self._zmq = zmq
        self._context = zmq.Context.instance()
        self._sockets: dict[str, Any] = {}
        self._poller = zmq.Poller()
        for channel in _CHANNELS:
            kind = zmq.SUB if channel == "iopub" else zmq.DEALER
            socket = self._context.socket(kind)
            socket.linger = 0
            if kind == zmq.SUB:
                socket.setsockopt(zmq.SUBSCRIBE, b"")
            else:
                socket.setsockopt(zmq.IDENTITY, self._session.bsession)
            socket.connect(_address(connection_info, channel))
            self._sockets[channel] = socket
            self._poller.register(socket, zmq.POLLIN)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._poller.register(self._wake_read, zmq.POLLIN)
        self._outbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._inbox: collections.deque[Message] = collections.deque()
        self._closing = False
        self._closed = False

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for its ``channel``; whoever reads sends it at once."""
        if self._closing:
            raise ConnectionLost(f"The channels of kernel {self.kernel_id} are closed.")
        self._outbox.put(msg)
        self._wake()

    def wait(self, seconds: float) -> bool:
        """Wait at most ``seconds`` for a message, a message to send, or :meth:`close`; False if
        none came. Nothing is read here."""
        if self._inbox or self._closing or not self._outbox.empty():
            return True
        return bool(self._poller.poll(seconds * 1000))

    def receive(self) -> Message | None:
        """The next message, sending what is queued first; None if none has come. ConnectionLost
        once closed."""
        if self._inbox:
            return self._inbox.popleft()
        if self._closing:
            self._close_sockets()
            raise ConnectionLost(f"The channels of kernel {self.kernel_id} were closed.")
        ready = dict(self._poller.poll(0))
        if self._wake_read in ready or not self._outbox.empty():
            self._drain_wake()
            self._send_queued()
        for channel, socket in self._sockets.items():
            if socket in ready:
                while socket.poll(0):
                    self._inbox.append(self._read(channel, socket))
        return self._inbox.popleft() if self._inbox else None

    def close(self) -> None:
        """Ask whoever reads to close the sockets (at the next receive; :meth:`release` otherwise)."""
        self._closing = True
        self._wake()

    abort = close

    def release(self) -> None:
        """Close the sockets once nothing reads them any more."""
        self._close_sockets()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"x")
        except OSError:
            pass  # closed already

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _send_queued(self) -> None:
        while True:
            try:
                msg = self._outbox.get_nowait()
            except queue.Empty:
                return
            self._session.send(self._sockets[msg["channel"]], msg)

    def _read(self, channel: str, socket: Any) -> Message:
        frames = socket.recv_multipart(copy=False)
        _, frames = self._session.feed_identities(frames, copy=False)
        msg = self._session.deserialize(frames, content=True, copy=False)
        header, parent = _plain_dates(msg["header"]), _plain_dates(msg["parent_header"])
        return {
            "header": header,
            "parent_header": parent,
            "metadata": msg.get("metadata") or {},
            "content": msg.get("content") or {},
            "buffers": [memoryview(b) for b in msg.get("buffers") or []],
            "channel": channel,
            "msg_id": header.get("msg_id", ""),
            "msg_type": header.get("msg_type", ""),
        }

    def _close_sockets(self) -> None:
        if self._closed:
            return
        self._closed = True
        for socket in self._sockets.values():
            socket.close(linger=0)
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)


def _address(info: dict[str, Any], channel: str) -> str:
    port = info[f"{channel}_port"]
    if info.get("transport", "tcp") == "ipc":
        return f"ipc://{info['ip']}-{port}"
    return f"tcp://{info.get('ip', '127.0.0.1')}:{port}"


def _plain_dates(header: Any) -> dict[str, Any]:
    """A header whose date is an ISO-8601 string, as on the websocket."""
    plain = dict(header or {})
    if isinstance(plain.get("date"), datetime):
        plain["date"] = plain["date"].isoformat()
    return plain
