"""The frame reader against a peer writing real websocket frames on a socket pair: for what a
Jupyter server never sends (fragments, masked or broken frames) and for deliveries cut anywhere,
across socket timeouts. Through real servers, see test_faults.py and test_latency_path.py."""

from __future__ import annotations

import socket
import tracemalloc

import pytest
from wsrelay import ws_frame

from remote_magic import frames
from remote_magic.errors import ProtocolError
from remote_magic.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    FrameError,
    FrameReader,
)

TIMEOUT = 0.002  # the reader's socket timeout: a read with nothing more to come ends at once


@pytest.fixture
def peer():
    """(server side of a socket pair, a FrameReader on the client side)."""
    server, client = socket.socketpair()
    client.settimeout(TIMEOUT)
    yield server, FrameReader(client)
    server.close()
    client.close()


def deliver(server: socket.socket, reader: FrameReader, data: bytes, cuts: list[int]):
    """Send ``data`` cut at ``cuts``, reading after each piece: every read before the last piece
    times out, having taken what arrived; the last returns what the reader makes of it all."""
    for start, end in zip([0, *cuts], cuts):
        server.sendall(data[start:end])
        with pytest.raises(TimeoutError):
            reader.read()
    server.sendall(data[cuts[-1] if cuts else 0 :])
    return reader.read()


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70001])
def test_a_frame_cut_anywhere_across_timeouts_arrives_whole(peer, length):
    server, reader = peer
    payload = bytes(i % 251 for i in range(length))
    data = ws_frame(BINARY, payload)
    cuts = list(range(1, min(len(data), 14))) + list(range(14, len(data), 4099))  # every header byte alone
    opcode, received = deliver(server, reader, data, cuts)
    assert (opcode, bytes(received)) == (BINARY, payload)
    server.sendall(ws_frame(TEXT, b"next"))
    assert reader.read() == (TEXT, b"next")  # in step with the stream


def test_fragments_are_joined_once_and_control_frames_between_them_come_first(peer):
    server, reader = peer
    server.sendall(
        ws_frame(TEXT, b"one ", fin=False)
        + ws_frame(PING, b"are you there")
        + ws_frame(CONTINUATION, b"two ", fin=False)
        + ws_frame(PONG, b"")
        + ws_frame(CONTINUATION, b"", fin=False)
        + ws_frame(CONTINUATION, b"three")
    )
    assert reader.read() == (PING, b"are you there")
    assert reader.read() == (PONG, b"")
    assert reader.read() == (TEXT, b"one two three")


def test_fragments_cut_anywhere_across_timeouts_arrive_whole(peer):
    server, reader = peer
    parts = [bytes([n]) * size for n, size in enumerate([70000, 3, 300])]
    data = b"".join(ws_frame(BINARY if n == 0 else CONTINUATION, part, fin=n == 2) for n, part in enumerate(parts))
    assert deliver(server, reader, data, list(range(1, len(data), 997))) == (BINARY, b"".join(parts))


def test_a_masked_message_is_refused_and_the_next_one_read(peer):
    server, reader = peer
    server.sendall(
        ws_frame(BINARY, b"first ", fin=False)
        + ws_frame(CONTINUATION, b"masked", fin=False, mask=b"abcd")
        + ws_frame(CONTINUATION, b" last")
        + ws_frame(PING, b"masked ping", mask=b"abcd")
        + ws_frame(BINARY, b"next")
    )
    with pytest.raises(ProtocolError, match="masked frame"):
        reader.read()
    with pytest.raises(ProtocolError, match="masked control frame"):
        reader.read()
    assert reader.read() == (BINARY, b"next")


BROKEN = {
    "reserved bits": ws_frame(BINARY, b"x", rsv=4),
    "unknown opcode 3": ws_frame(0x3, b"x"),
    "continuation frame outside a message": ws_frame(CONTINUATION, b"x"),
    "new message inside a fragmented one": ws_frame(TEXT, b"x", fin=False) + ws_frame(BINARY, b"y"),
    "fragmented or over-long control frame": ws_frame(PING, b"x", fin=False),
    "over-long control frame": ws_frame(CLOSE, b"x" * 126),
    "longer than 2**63": ws_frame(BINARY, b"", length=2**63),
    "ended the connection": ws_frame(BINARY, b"half", length=8),
}


@pytest.mark.parametrize("reason, data", BROKEN.items(), ids=BROKEN)
def test_broken_framing_ends_the_connection_saying_why(peer, reason, data):
    server, reader = peer
    server.sendall(data)
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(FrameError) as caught:
        while True:
            reader.read()
    assert reason in str(caught.value)


def test_a_length_announced_but_not_sent_allocates_no_more_than_a_piece(peer, monkeypatch):
    monkeypatch.setattr(frames, "PIECE", 2**20)
    server, reader = peer
    server.sendall(ws_frame(BINARY, b"some", length=2**40))
    tracemalloc.start()
    try:
        with pytest.raises(TimeoutError):
            reader.read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.1 * 2**20


def test_a_message_longer_than_a_piece_arrives_whole(peer, monkeypatch):
    monkeypatch.setattr(frames, "PIECE", 1000)
    server, reader = peer
    payload = bytes(i % 253 for i in range(3500))
    assert deliver(server, reader, ws_frame(BINARY, payload), [2, 10, 1500]) == (BINARY, payload)
