"""Round-trip latency of remote_magic's engine, side by side with a ZMQ floor and a naive client.

Run as ``python benchmarks/latency.py [--rounds N]``. In one run it starts a private Jupyter
Server on 127.0.0.1 and a local kernel, then measures, interleaving the contenders round by
round so machine noise hits them all alike:

* ``execute("pass")`` round trip (request sent -> ``execute_reply`` and ``idle`` received):
  (a) through the engine (``RemoteKernel.run``), (b) through ``jupyter_client``'s
  ``BlockingKernelClient`` talking ZMQ straight to a local kernel (the floor), (c) through a naive
  ``websocket-client`` request/response loop against the same server (no ``TCP_QUICKACK``), and
  for reference (d) the leanest websocket loop there is (one thread, v1 protocol, ``TCP_QUICKACK``
  re-armed before each receive): what any client going through the server can at best reach;
* a 100k-line print through the engine and through ZMQ.

It prints medians and the ratios engine/floor (target <= 1.5x for ``pass``, <= 1.2x for the
print) and naive/engine (target >= 4x). Timings are only printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Keep this run's servers out of the user's own runtime directory.
os.environ.setdefault("JUPYTER_RUNTIME_DIR", tempfile.mkdtemp(prefix="remote_magic-bench-"))

import websocket  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

from remote_magic import Server, protocol  # noqa: E402
from remote_magic.launch import LaunchedServer  # noqa: E402

PRINT_LINES = 100_000
PRINT_CODE = f"for i in range({PRINT_LINES}):\n    print(i)"
PRINT_BYTES = sum(len(str(i)) + 1 for i in range(PRINT_LINES))


# ---------------------------------------------------------------------------------- contenders


class Engine:
    """remote_magic: the same call a user makes."""

    def __init__(self, url: str, token: str, kernel_id: str | None = None):
        self.server = Server(url, token)
        self.kernel = self.server.kernel(kernel_id) if kernel_id else self.server.start_kernel()
        self.owned = kernel_id is None

    def run(self, code: str) -> int:
        result = self.kernel.run(code, input=None)
        assert result.ok, result.reply
        shown = (o["data"] for o in result.outputs if o["output_type"] == "display_data")
        return len(result.text()) + sum(len(value) for data in shown for value in data.values())

    def close(self) -> None:
        if self.owned:
            self.kernel.shutdown()
        self.server.close()


class ZmqFloor:
    """jupyter_client's BlockingKernelClient over ZMQ to a kernel on this machine."""

    def __init__(self) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel()
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str) -> int:
        client = self.client
        msg_id = client.execute(code)
        received = 0
        while True:  # iopub until this request's idle
            msg = client.iopub_channel.get_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                received += len(msg["content"]["text"])
            elif msg["msg_type"] == "display_data":
                received += sum(len(value) for value in msg["content"]["data"].values())
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        while client.shell_channel.get_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
            pass  # the reply was sent before idle: it is already waiting
        return received

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


class NaiveWebsocket:
    """The obvious websocket-client loop: send JSON, recv until reply and idle. No socket tuning."""

    def __init__(self, server: Server, token: str, kernel_id: str):
        self.session = uuid.uuid4().hex  # its own client session: it must not evict the engine's
        url = server.url.websocket("kernels", kernel_id, "channels", query={"session_id": self.session})
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {token}"])

    def run(self, code: str) -> int:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": self.session,
            "username": "bench",
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        }
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
        self.ws.send(
            json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"})
        )
        got_reply = got_idle = False
        received = 0
        while not (got_reply and got_idle):
            msg = json.loads(self.ws.recv())
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["channel"] == "shell":
                got_reply = True
            elif msg["msg_type"] == "stream":
                received += len(msg["content"]["text"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                got_idle = True
        return received

    def close(self) -> None:
        self.ws.close()


class LeanWebsocket:
    """The least a websocket client can do: one thread, v1 frames, prompt ACKs (``TCP_QUICKACK``
    re-armed before each receive, and a pong at the end of each burst so that a proxy's ACK rides
    along). A reference only."""

    def __init__(self, server: Server, token: str, kernel_id: str):
        self.server, self.token = server, token
        self.connect(kernel_id)
        self.quickack = getattr(socket, "TCP_QUICKACK", None)

    def connect(self, kernel_id: str) -> None:
        """Open the websocket to ``kernel_id``, as a client session of its own."""
        self.session = uuid.uuid4().hex
        url = self.server.url.websocket("kernels", kernel_id, "channels", query={"session_id": self.session})
        self.ws = websocket.create_connection(
            url,
            header=[f"Authorization: token {self.token}"],
            subprotocols=[protocol.V1_SUBPROTOCOL],
            skip_utf8_validation=True,
        )

    def run(self, code: str) -> int:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
        msg = protocol.new_message("execute_request", content, session=self.session)
        self.ws.send_binary(protocol.encode_v1(msg))
        got_reply = got_idle = False
        received = 0
        while not (got_reply and got_idle):
            if self.quickack is not None:
                self.ws.sock.setsockopt(socket.IPPROTO_TCP, self.quickack, 1)
            reply = protocol.decode_v1(self.ws.recv_data()[1])
            if not select.select([self.ws.sock], [], [], 0)[0]:
                self.ws.pong(b"")
            if reply["parent_header"].get("msg_id") != msg["msg_id"]:
                continue
            if reply["channel"] == "shell":
                got_reply = True
            elif reply["msg_type"] == "stream":
                received += len(reply["content"]["text"])
            elif reply["msg_type"] == "display_data":
                received += sum(len(value) for value in reply["content"]["data"].values())
            elif reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                got_idle = True
        return received

    def close(self) -> None:
        self.ws.close()


# ---------------------------------------------------------------------------------- measuring


def timed(run: Callable[[str], int], code: str, expect_bytes: int | None = None) -> float:
    start = time.perf_counter()
    received = run(code)
    elapsed = time.perf_counter() - start
    if expect_bytes is not None and received != expect_bytes:
        raise SystemExit(f"lost output: got {received} bytes of {expect_bytes}")
    return elapsed


def interleave(
    contenders: dict[str, Callable[[str], int]], code: str, rounds: int, per_round: int, expect: int | None
) -> dict[str, list[float]]:
    """Alternate the contenders round by round (order rotated each round)."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            for _ in range(per_round):
                samples[name].append(timed(contenders[name], code, expect))
    return samples


def ms(value: float) -> str:
    return f"{value * 1000:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of `pass` (each runs every contender)")
    parser.add_argument("--per-round", type=int, default=10, help="`pass` executions per contender per round")
    parser.add_argument("--print-rounds", type=int, default=7, help="rounds of the 100k-line print")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    launched = LaunchedServer()
    engine = floor = naive = lean = None
    try:
        engine = Engine(launched.url, launched.token)
        floor = ZmqFloor()
        naive = NaiveWebsocket(engine.server, launched.token, engine.kernel.id)
        lean = LeanWebsocket(engine.server, launched.token, engine.kernel.id)
        for contender in (engine, floor, naive, lean):  # warm up: imports, first-execution costs
            for _ in range(5):
                contender.run("pass")

        passes = interleave(
            {"engine": engine.run, "zmq floor": floor.run, "naive websocket": naive.run, "lean websocket": lean.run},
            "pass",
            args.rounds,
            args.per_round,
            None,
        )
        engine.run(PRINT_CODE), floor.run(PRINT_CODE)  # warm up the print too
        prints = interleave(
            {"engine": engine.run, "zmq floor": floor.run}, PRINT_CODE, args.print_rounds, 1, PRINT_BYTES
        )
    finally:
        for contender in (lean, naive, floor, engine):
            if contender is not None:
                contender.close()
        launched.stop()

    load_after = os.getloadavg()[0]
    med = {name: statistics.median(values) for name, values in passes.items()}
    pmed = {name: statistics.median(values) for name, values in prints.items()}
    print(f"execute('pass') round trip, median of {args.rounds * args.per_round} each (interleaved):")
    for name, value in med.items():
        print(f"  {name:16s}{ms(value)}")
    print(f"{PRINT_LINES}-line print ({PRINT_BYTES} bytes), median of {args.print_rounds} each (interleaved):")
    for name, value in pmed.items():
        print(f"  {name:16s}{ms(value)}")
    pass_ratio = med["engine"] / med["zmq floor"]
    print_ratio = pmed["engine"] / pmed["zmq floor"]
    naive_ratio = med["naive websocket"] / med["engine"]
    print("ratios:")
    print(f"  engine/floor, pass   {pass_ratio:6.2f}x  (target <= 1.5x)  {'ok' if pass_ratio <= 1.5 else 'MISSED'}")
    print(f"  engine/floor, print  {print_ratio:6.2f}x  (target <= 1.2x)  {'ok' if print_ratio <= 1.2 else 'MISSED'}")
    print(f"  naive/engine, pass   {naive_ratio:6.2f}x  (target >= 4x)    {'ok' if naive_ratio >= 4 else 'MISSED'}")
    print(f"  engine/lean,  pass   {med['engine'] / med['lean websocket']:6.2f}x  (reference: the engine's own overhead)")
    print(f"machine load average {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
