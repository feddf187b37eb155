"""The websocket of one kernel: the handshake, frames in and out, and a watch on the link.

A :class:`KernelSocket` is one connection; it does not reconnect (the link does). After half of
``ping_timeout`` without a frame a websocket ping goes out, and a link that has sent nothing at all
for ``ping_timeout`` is declared dead (a frozen proxy or a suspended laptop close nothing, so only
this notices them). ACKs go out promptly: ``TCP_QUICKACK`` before each wait for a frame, and an
unsolicited pong at the end of each burst of frames for a proxy or tunnel in between (see
:meth:`KernelSocket._nudge`). Reading takes two calls, :meth:`KernelSocket.wait` for a frame then
:meth:`KernelSocket.receive`, so that the waiting can be interrupted without losing a byte.
websocket-client makes the handshake and sends; frames are read by :mod:`.frames`.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from typing import Any

import websocket

from . import frames, protocol, wslog
from .errors import AuthenticationError, ConnectionLost, NotFound
from .protocol import Message
from .rest import RestClient

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)

wslog.install()  # websocket-client's trace logs the handshake headers: keep the token out


class HandshakeTimeout(ConnectionLost):
    """The server accepted the connection but did not finish the websocket handshake in time
    (it holds the handshake until the kernel answers, so a kernel still starting looks like this)."""


class _NoSubprotocol(Exception):
    """The server completed the handshake without selecting the subprotocol asked for."""


#: websocket-client's complaint about a handshake answer, e.g. one that selects no subprotocol.
_BAD_HEADER = "Invalid WebSocket Header"


class KernelSocket:
    """One websocket connection to ``/api/kernels/{id}/channels``."""

    def __init__(
        self,
        rest: RestClient,
        kernel_id: str,
        session_id: str,
        *,
        protocol_choice: str = "auto",
        ping_timeout: float = 10.0,
    ):
        self._rest = rest
        self.kernel_id = kernel_id
        self.session_id = session_id
        self.protocol_choice = protocol_choice
        self.quiet = ping_timeout / 2  # silence before a ping, and a ping's time to be answered
        self.v1 = False
        self._ws: websocket.WebSocket | None = None
        self._frames: frames.FrameReader | None = None
        self._heard = 0.0  # when the last frame came
        self._ping_sent: float | None = None  # when the unanswered ping went out
        self._nudge_frame = b""  # an empty pong, masked once per connection (no payload to hide)
        self._poller = select.poll()

    # ------------------------------------------------------------------ connecting

    def connect(self, timeout: float) -> None:
        """Open the websocket; raise AuthenticationError/NotFound (final), HandshakeTimeout or
        ConnectionLost (worth retrying).

        With protocol "auto" the v1 subprotocol is asked for unless this server is known to select
        none (the classic Notebook server); a server that accepts the handshake without selecting
        one is remembered as such (``rest.selects_subprotocol``) and asked again without it, once."""
        asks_v1 = self.protocol_choice == "v1" or (self.protocol_choice == "auto" and self._rest.selects_subprotocol)
        try:
            ws = self._handshake(timeout, [protocol.V1_SUBPROTOCOL] if asks_v1 else None)
        except _NoSubprotocol:
            if self.protocol_choice == "v1":
                raise ConnectionLost(f"{self._rest.url} does not speak the v1 kernel websocket protocol; use 'auto'.") from None
            ws = self._handshake(timeout, None)
            self._rest.selects_subprotocol = False  # it worked without: remember it for this server
        chosen = ws.getsubprotocol()
        if self.protocol_choice == "v1" and chosen != protocol.V1_SUBPROTOCOL:
            ws.close()
            raise ConnectionLost(f"{self._rest.url} does not speak the v1 kernel websocket protocol; use 'auto'.")
        self.v1 = chosen == protocol.V1_SUBPROTOCOL
        ws.settimeout(self.quiet)
        self._heard, self._ping_sent = time.monotonic(), None
        self._frames = frames.FrameReader(ws.sock)
        self._nudge_frame = websocket.ABNF.create_frame(b"", websocket.ABNF.OPCODE_PONG).format()
        self._poller.register(ws.sock, select.POLLIN)
        self._ws = ws

    def _handshake(self, timeout: float, subprotocols: list[str] | None) -> websocket.WebSocket:
        url = self._rest.url.websocket("kernels", self.kernel_id, "channels", query={"session_id": self.session_id})
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True, sslopt=self._sslopt())
        try:
            ws.connect(url, header=self._rest.auth.header_lines(), subprotocols=subprotocols, timeout=timeout)
        except websocket.WebSocketBadStatusException as exc:
            raise self._handshake_error(exc.status_code) from None
        except (socket.timeout, websocket.WebSocketTimeoutException):
            ws.abort()
            raise HandshakeTimeout(
                f"Kernel {self.kernel_id} on {self._rest.url} did not finish the websocket handshake in {timeout:g}s."
            ) from None
        except websocket.WebSocketException as exc:
            ws.abort()
            if subprotocols and str(exc) == _BAD_HEADER:  # accepted, but no subprotocol selected
                raise _NoSubprotocol() from None
            raise self._lost(exc) from None
        except OSError as exc:
            raise self._lost(exc) from None
        return ws

    def _lost(self, exc: Exception) -> ConnectionLost:
        return ConnectionLost(
            f"Cannot open the websocket of kernel {self.kernel_id} on {self._rest.url} "
            f"({type(exc).__name__}); check the server is running."
        )

    def _sslopt(self) -> dict[str, Any]:
        verify = self._rest.verify
        if verify is False:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        if isinstance(verify, str):
            return {"ca_certs": verify}
        return {}

    def _handshake_error(self, status: int) -> Exception:
        if status in (401, 403):
            return AuthenticationError(
                f"{self._rest.url} refused the kernel websocket (HTTP {status}): {self._rest.auth.refused()}."
            )
        if status == 404:
            return NotFound(f"Kernel {self.kernel_id} does not exist on {self._rest.url}; list kernels to pick one.")
        if status in (502, 503, 504):
            return ConnectionLost(
                f"{self._rest.url} refused the kernel websocket (HTTP {status}): a proxy in front of it could not "
                "reach the server; check the server behind the proxy is running, then retry."
            )
        return ConnectionLost(f"{self._rest.url} refused the kernel websocket (HTTP {status}).")

    # ------------------------------------------------------------------ frames

    def wait(self, seconds: float) -> bool:
        """Wait at most ``seconds`` for a frame; False if none came. Nothing is read here, so an
        interruption loses nothing. A quiet spell sends a ping; ConnectionLost when a ping went
        unanswered. A connection closed or broken meanwhile counts as a frame: receive says so."""
        ws, reader = self._open()
        sock = reader.sock
        if _QUICKACK is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                return True  # closed under us: receive says so
        if self._readable(sock, min(seconds, self._until_silence())):
            return True
        self._on_silence(ws)
        return False

    def receive(self) -> Message | None:
        """The next message, once :meth:`wait` saw a frame; None after a control frame, or after
        a frame stalled midway through a quiet spell (the next call resumes it).
        Raises ProtocolError for a malformed frame (the connection stays usable) and
        ConnectionLost when the connection closed, broke, or stopped answering pings."""
        ws, reader = self._open()
        try:
            opcode, data = reader.read()
            if opcode == frames.PING:
                ws.pong(data)
            elif opcode == frames.CLOSE:
                ws.send_close()
        except (TimeoutError, websocket.WebSocketTimeoutException):
            self._on_silence(ws)
            return None
        except frames.FrameError as exc:
            raise ConnectionLost(f"Lost the websocket of kernel {self.kernel_id} ({exc}).") from None
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLost(f"Lost the websocket of kernel {self.kernel_id} ({type(exc).__name__}).") from None
        self._heard, self._ping_sent = time.monotonic(), None
        if opcode == frames.CLOSE:
            raise ConnectionLost(f"The server closed the websocket of kernel {self.kernel_id}.")
        if opcode in (frames.PING, frames.PONG):
            return None
        msg = protocol.decode_frame(data, text=opcode == frames.TEXT, v1=self.v1)
        if not self._readable(reader.sock, 0):  # the end of a burst
            self._nudge(ws)
        return msg

    def _open(self) -> tuple[websocket.WebSocket, frames.FrameReader]:
        ws, reader = self._ws, self._frames
        if ws is None or reader is None:
            raise ConnectionLost(f"The websocket of kernel {self.kernel_id} is not open.")
        return ws, reader

    def _readable(self, sock: socket.socket, seconds: float) -> bool:
        """Whether bytes are waiting on ``sock`` (decrypted or not), waiting up to ``seconds``."""
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        try:
            return bool(self._poller.poll(seconds * 1000))
        except (OSError, ValueError):  # closed under us: receive says so
            return True

    def _nudge(self, ws: websocket.WebSocket) -> None:
        """End of a burst: send an (unsolicited, unanswered) pong. A proxy or tunnel in between
        delays its TCP ACK to the server, whose Nagle then holds the next frames ~40 ms; data from
        this side lets that ACK ride along at once. The frame is made once: one is sent per burst."""
        sock = ws.sock
        try:
            with ws.lock:  # websocket-client's own sends hold it
                sock.sendall(self._nudge_frame)
        except (OSError, AttributeError):
            pass  # closed (no socket any more) or broken: the next receive notices

    def _until_silence(self) -> float:
        """Seconds until the link has been quiet too long: time to ping, or to give up."""
        since = self._heard if self._ping_sent is None else self._ping_sent
        return max(since + self.quiet - time.monotonic(), 0.0)

    def _on_silence(self, ws: websocket.WebSocket) -> None:
        """Nothing received for a while: ping, or give up on a link that left a ping unanswered."""
        if self._until_silence() > 0:
            return
        if self._ping_sent is not None:
            ws.abort()
            raise ConnectionLost(
                f"The link to {self._rest.url} stopped answering (nothing received for {2 * self.quiet:g}s)."
            )
        try:
            ws.ping()
        except (OSError, websocket.WebSocketException):
            raise ConnectionLost(f"Lost the websocket of kernel {self.kernel_id} (a ping could not be sent).") from None
        self._ping_sent = time.monotonic()

    def send(self, msg: Message) -> None:
        """Send one message; ConnectionLost if the connection is down."""
        ws = self._ws
        payload = protocol.encode_v1(msg) if self.v1 else protocol.encode_legacy(msg)
        opcode = websocket.ABNF.OPCODE_TEXT if isinstance(payload, str) else websocket.ABNF.OPCODE_BINARY
        try:
            if ws is None:
                raise OSError("not open")
            ws.send(payload, opcode)
        except (OSError, websocket.WebSocketException):
            raise ConnectionLost(f"Could not send to kernel {self.kernel_id}: the websocket is down.") from None

    def close(self) -> None:
        """Send a close frame and end the connection; whoever reads sees it end. Nothing is read
        here: two threads reading one TLS socket at once crash OpenSSL. :meth:`release` frees it."""
        ws = self._ws
        if ws is None:
            return
        sock = ws.sock
        try:
            ws.send_close()
        except Exception:  # already broken: nothing left to say
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR)  # ws.abort() does nothing once send_close() marked it closed
        except (OSError, AttributeError):
            pass  # closed already

    def release(self) -> None:
        """Free the socket once nothing reads it any more."""
        ws = self._ws
        if ws is not None:
            ws.shutdown()

    def abort(self) -> None:
        """Drop the connection at once: a :meth:`wait` in progress ends and :meth:`receive` raises
        ConnectionLost."""
        ws = self._ws
        if ws is not None:
            ws.abort()

