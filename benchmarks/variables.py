"""Throughput of variable push/pull against a raw websocket moving the same bytes, in one run.

Run as ``python benchmarks/variables.py [--mib 100] [--rounds 3]``. It starts a private Jupyter
Server on 127.0.0.1 and a kernel, then alternates, round by round:

* ``push``: ``kernel.push({"x": array})`` of a ``--mib`` MiB numpy array, and ``pull``:
  ``kernel.pull("x")``, both through remote_magic;
* the raw limit: the same bytes as bare ``comm_msg`` frames of the same 4 MiB pieces over a lean
  websocket (``latency.LeanWebsocket``'s connection: v1 frames, no routing, no decoding) to a
  kernel-side comm that only counts them and answers once (push), or sends them back (pull).

It prints median MB/s and the ratio engine/raw (target >= 0.5x). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from latency import Engine, LaunchedServer, LeanWebsocket  # benchmarks/ is on sys.path

from remote_magic import protocol
from remote_magic.varcodec import CHUNK_BYTES

SINK = """
from comm import get_comm_manager
def _sink(comm, msg):
    def on_msg(m):
        data = m['content']['data']
        if data.get('send'):
            block = bytes(data['piece'])
            for _ in range(data['send'] // data['piece']):
                comm.send({}, buffers=[block])
        if data.get('end') or data.get('send'):
            comm.send({'ok': True})
    comm.on_msg(on_msg)
get_comm_manager().register_target('bench.sink', _sink)
"""


class RawComm(LeanWebsocket):
    """Bare comm frames over the lean websocket: the least that moving these bytes can cost."""

    def __init__(self, engine: Engine, token: str):
        super().__init__(engine.server, token, engine.kernel.id)
        self.comm_id = protocol.new_session_id()
        self._send("comm_open", {"comm_id": self.comm_id, "target_name": "bench.sink", "data": {}})

    def _send(self, msg_type: str, content: dict, buffers: list | None = None) -> None:
        msg = protocol.new_message(msg_type, content, session=self.session)
        msg["buffers"] = buffers or []
        self.ws.send_binary(protocol.encode_v1(msg))

    def _until_ok(self) -> int:
        received = 0
        while True:
            msg = protocol.decode_v1(self.ws.recv_data()[1])
            if msg["msg_type"] != "comm_msg" or msg["content"].get("comm_id") != self.comm_id:
                continue
            received += sum(len(b) for b in msg["buffers"])
            if msg["content"]["data"].get("ok"):
                return received

    def push(self, data: memoryview) -> None:
        for start in range(0, len(data), CHUNK_BYTES):
            self._send("comm_msg", {"comm_id": self.comm_id, "data": {}}, [data[start : start + CHUNK_BYTES]])
        self._send("comm_msg", {"comm_id": self.comm_id, "data": {"end": True}})
        self._until_ok()

    def pull(self, size: int) -> None:
        self._send("comm_msg", {"comm_id": self.comm_id, "data": {"send": size, "piece": CHUNK_BYTES}})
        assert self._until_ok() == size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100, help="size of the array, in MiB (a multiple of 4)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * 2**20
    array = np.random.default_rng(0).integers(0, 255, size, dtype="u1")

    launched = LaunchedServer()
    engine = raw = None
    try:
        engine = Engine(launched.url, launched.token)
        engine.kernel.run(SINK).raise_for_error()
        raw = RawComm(engine, launched.token)
        kernel, view = engine.kernel, memoryview(array)
        contenders = {
            "push engine": lambda: kernel.push({"x": array}),
            "push raw": lambda: raw.push(view),
            "pull engine": lambda: kernel.pull("x"),
            "pull raw": lambda: raw.pull(size),
        }
        for run in contenders.values():  # warm up (the kernel side is installed here)
            run()
        assert np.array_equal(kernel.pull("x"), array)
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, run in contenders.items():
                start = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - start)
    finally:
        if raw is not None:
            raw.close()
        if engine is not None:
            engine.close()
        launched.stop()

    print(f"{args.mib} MiB numpy array, median of {args.rounds} (interleaved):")
    rate = {name: size / statistics.median(values) / 1e6 for name, values in samples.items()}
    for name in contenders:
        print(f"  {name:12} {rate[name]:8.0f} MB/s")
    for way in ("push", "pull"):
        print(f"  {way}: engine / raw websocket = {rate[way + ' engine'] / rate[way + ' raw']:.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
