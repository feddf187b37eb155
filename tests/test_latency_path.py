"""The per-cell path through a proxy: the client's own data lets a proxy's ACK to the server ride
along, so the server's Nagle never holds the next frames for a delayed-ACK timer.

A real proxy's delayed ACK is a matter of milliseconds and of timing; :class:`AckLagRelay` models
it deterministically and counts it instead: after passing data to the client, it holds what the
server sends next until the client sends something (the ACK rides on it) or ``hold`` seconds pass
(the delayed-ACK timer fired: counted in :attr:`AckLagRelay.stalls`).
"""

from __future__ import annotations

import select
import socket
import threading
import time
import tracemalloc

import pytest

from remote_magic import Server, protocol

HOLD = 3.0  # the relay's delayed-ACK timer: far longer than any nudge takes, even on a busy machine


class AckLagRelay:
    """A TCP relay on 127.0.0.1 in front of ``target`` that delays its ACKs to the server."""

    def __init__(self, target: tuple[str, int], hold: float = HOLD):
        self.target = target
        self.hold = hold
        self.stalls = 0  # server data held until the timer fired: a cell paid the delayed ACK
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed:
            if not select.select([self._listener], [], [], 0.2)[0]:
                continue
            client, _ = self._listener.accept()
            upstream = socket.create_connection(self.target, timeout=10)
            thread = threading.Thread(target=self._relay, args=(client, upstream), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        unacked_since: float | None = None  # the server has data in flight that is not ACKed
        held = b""  # what the server wrote meanwhile (its Nagle holds it)
        try:
            while not self._closed:
                readable = select.select([client, upstream], [], [], 0.05)[0]
                now = time.monotonic()
                if client in readable:
                    data = client.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                    unacked_since = None  # the ACK rode along
                if upstream in readable:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    held += data
                if unacked_since is not None and now - unacked_since >= self.hold:
                    self.stalls += bool(held)
                    unacked_since = None  # the delayed-ACK timer fired
                if held and unacked_since is None:
                    client.sendall(held)
                    held, unacked_since = b"", now
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._closed = True
        for thread in self._threads:
            thread.join(timeout=2)
        self._listener.close()


@pytest.fixture
def relayed_kernel(jupyter_server):
    port = int(jupyter_server.url.rstrip("/").rsplit(":", 1)[1])
    relay = AckLagRelay(("127.0.0.1", port))
    server = Server(f"http://127.0.0.1:{relay.port}/", jupyter_server.token, ping_timeout=60)
    kernel = server.start_kernel()
    kernel.run("1+1")  # connected; the handshake's REST calls are not what is counted
    yield relay, kernel
    kernel.shutdown()
    server.close()
    relay.close()


def test_a_cell_through_a_proxy_never_waits_for_its_delayed_ack(relayed_kernel):
    relay, kernel = relayed_kernel
    relay.stalls = 0
    for _ in range(5):
        assert kernel.run("pass").ok
    result = kernel.run("import sys\nfor i in range(20):\n    print(i); sys.stdout.flush()\n'done'")
    assert result.ok and result.text().split() == [str(i) for i in range(20)]
    assert relay.stalls == 0


@pytest.mark.parametrize("v1", [True, False])
def test_a_large_output_is_decoded_without_copying_the_frame(v1):
    """Decoding reads the JSON parts in place and the image's string straight from the frame:
    besides the frame, only the parsed value exists at the peak (a copied slice of a 20 MiB image
    was one more 20 MiB, the decoded text of the part another)."""
    size = 8 * 2**20
    msg = protocol.new_message("display_data", {"data": {"image/png": "A" * size}, "metadata": {}}, session="s")
    msg["buffers"] = [b"x"]  # a legacy frame is binary only when it has buffers
    frame = protocol.encode_v1(msg) if v1 else protocol.encode_legacy(msg)
    del msg
    tracemalloc.start()
    try:
        decoded = protocol.decode_frame(frame, text=False, v1=v1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded["content"]["data"]["image/png"] == "A" * size
    assert peak < 1.25 * size


PNG_BYTES = 20 * 2**20
PNG_CODE = (
    "import os\nfrom IPython.display import Image, display\n"
    f"display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom({PNG_BYTES} - 8), format='png'))"
)


def test_a_20_mib_image_from_a_real_server_costs_its_frame_and_its_value(proto_kernel):
    """The frame is received into one buffer and the image's string decoded from it: 2x its
    base64 at the peak (3x when the frame was joined from chunks and its text parsed whole)."""
    proto_kernel.run("1")  # connected: the handshake is not what is measured
    tracemalloc.start()
    try:
        result = proto_kernel.run(PNG_CODE, timeout=120)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    payload = len(result.outputs[0]["data"]["image/png"])
    assert payload > 4 / 3 * PNG_BYTES
    assert peak < 2.25 * payload
