"""Websocket frames from a server (RFC 6455, section 5), each message received straight into a
buffer of the size its header announces.

websocket-client reads a payload in chunks and joins them, and joins again for fragments: a large
message cost twice its size while it arrived. A :class:`FrameReader` owns the reading side of one
plain or TLS socket instead (websocket-client still makes the handshake and sends): it returns
each data message whole, its fragments joined once, and each control frame as it comes, between
fragments too. A socket timeout loses nothing: the next :meth:`FrameReader.read` resumes the frame.
"""

from __future__ import annotations

import socket

from .errors import ProtocolError

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_CONTROL = (CLOSE, PING, PONG)
#: The most allocated for a payload ahead of its bytes (a larger one takes several buffers, joined
#: once at its end): a length a server announces but never sends costs no more than this.
PIECE = 64 * 2**20


class FrameError(Exception):
    """The websocket cannot go on: the server broke its framing, or ended the connection."""


class _Frame:
    """A frame whose header is in; its payload fills ``pieces``, ``left`` bytes to come."""

    __slots__ = ("opcode", "fin", "masked", "left", "pieces", "filling")

    def __init__(self, opcode: int, fin: bool, masked: bool, length: int):
        self.opcode, self.fin, self.masked, self.left = opcode, fin, masked, length
        self.pieces: list[bytearray] = []
        self.filling: bytearray | None = None  # the piece being received


class FrameReader:
    """Reads what a server sends on ``sock``: see the module's documentation."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._head = bytearray(14)  # 2 bytes, an extended length of 0, 2 or 8, a mask key of 0 or 4
        self._head_size = 0  # the current header's size once its first two bytes are in
        self._filled = 0  # bytes of the buffer being filled that have arrived
        self._frame: _Frame | None = None
        self._message: list[bytearray] = []  # the payload so far of a fragmented data message
        self._message_opcode = 0  # TEXT or BINARY while a data message is being received
        self._refusal = ""  # why the data message being received will be dropped at its end

    def read(self) -> tuple[int, bytes | bytearray]:
        """The next control frame or whole data message: (opcode, payload). Raises TimeoutError
        (nothing is lost), OSError, :class:`FrameError`, and ProtocolError for a masked message
        (read to its end and dropped: the connection stays usable)."""
        while True:
            if self._frame is None:
                self._frame = self._header()
            frame = self._frame
            self._receive(frame)
            self._frame = None
            if frame.opcode in _CONTROL:
                if frame.masked:
                    raise ProtocolError("the server sent a masked control frame")
                return frame.opcode, _joined(frame.pieces)
            self._message += frame.pieces
            if frame.masked:
                self._refusal = "the server sent a masked frame"
            if frame.fin:
                return self._message_end()

    def _message_end(self) -> tuple[int, bytes | bytearray]:
        pieces, opcode, refusal = self._message, self._message_opcode, self._refusal
        self._message, self._message_opcode, self._refusal = [], 0, ""
        if refusal:
            raise ProtocolError(refusal)
        return opcode, _joined(pieces)

    def _header(self) -> _Frame:
        head = memoryview(self._head)
        if not self._head_size:
            self._fill(head[:2])
            length_bits = self._head[1] & 0x7F
            self._head_size = 2 + {126: 2, 127: 8}.get(length_bits, 0) + 4 * (self._head[1] >> 7)
        self._fill(head[2 : self._head_size])
        self._head_size = 0
        first, second = self._head[0], self._head[1]
        fin, opcode, masked, length = bool(first >> 7), first & 0x0F, bool(second >> 7), second & 0x7F
        if length == 126:
            length = int.from_bytes(head[2:4], "big")
        elif length == 127:
            length = int.from_bytes(head[2:10], "big")
        self._check(first, opcode, fin, length)
        if opcode != CONTINUATION and opcode not in _CONTROL:
            self._message_opcode = opcode
        return _Frame(opcode, fin, masked, length)

    def _check(self, first: int, opcode: int, fin: bool, length: int) -> None:
        """Refuse a header RFC 6455 forbids here (no extension is negotiated)."""
        if first & 0x70:
            raise FrameError("a frame with reserved bits set")
        if length >> 63:
            raise FrameError("a frame longer than 2**63 bytes")
        if opcode in _CONTROL:
            if not fin or length > 125:
                raise FrameError("a fragmented or over-long control frame")
        elif opcode == CONTINUATION:
            if not self._message_opcode:
                raise FrameError("a continuation frame outside a message")
        elif opcode in (TEXT, BINARY):
            if self._message_opcode:
                raise FrameError("a new message inside a fragmented one")
        else:
            raise FrameError(f"a frame of unknown opcode {opcode}")

    def _receive(self, frame: _Frame) -> None:
        while frame.left:
            if frame.filling is None:
                frame.filling = bytearray(min(frame.left, PIECE))
            self._fill(memoryview(frame.filling))
            frame.pieces.append(frame.filling)
            frame.left -= len(frame.filling)
            frame.filling = None

    def _fill(self, target: memoryview) -> None:
        """Receive into ``target`` until it is full; what arrived before a timeout is kept."""
        while self._filled < len(target):
            count = self.sock.recv_into(target[self._filled :])
            if not count:
                raise FrameError("the server ended the connection")
            self._filled += count
        self._filled = 0


def _joined(pieces: list[bytearray]) -> bytes | bytearray:
    """One buffer of ``pieces``: itself when there is one (the common case: no copy)."""
    if len(pieces) == 1:
        return pieces[0]
    return b"".join(pieces)
