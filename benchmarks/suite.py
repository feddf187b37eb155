"""Every workload in one table: remote_magic beside the raw websocket limit, the ZMQ floor and peers.

Run as ``make benchmark`` (installs the benchmark-only peers) or ``python benchmarks/suite.py
[--quick]``. One run starts a private Jupyter Server on 127.0.0.1 and measures, contenders
interleaved round by round so that machine noise hits them all alike:

* ``pass`` round trips: ``%%remote`` through a real IPython shell, the engine
  (``RemoteKernel.run``), the raw websocket limit (``latency.LeanWebsocket``), datalayer's
  ``jupyter-kernel-client``, ipyparallel's ``%%px`` and the ZMQ floor (``jupyter_client`` straight
  to a local kernel) — direct, through a TCP forwarder, through configurable-http-proxy and over
  a link delaying 50 ms each way (one network round trip = 100 ms);
* connecting: REST calls, time and network round trips (on the 50 ms link);
* cold start in a fresh subprocess: import + connect + first ``1+1``, on a new and a running kernel;
* one 20 MiB PNG display: time and the client's peak Python memory against the payload on the wire;
* 20 kernels driven from 20 threads: throughput against raw websockets.

Ratios are against baselines measured in the same run. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import tracemalloc

from IPython.core.interactiveshell import InteractiveShell
from latency import (  # benchmarks/ is on sys.path
    Engine,
    LaunchedServer,
    LeanWebsocket,
    ZmqFloor,
    interleave,
)
from magic import EngineCell, ShellMagic
from peers import SLOW_DELAY, Datalayer, Ipyparallel, link_url, missing, open_links
from startup import RestCounter, cold_starts
from workloads import PNG_CODE

from remote_magic import Server
from remote_magic.errors import RemoteMagicError

RTT = 2 * SLOW_DELAY
MANY = 20
REST = RestCounter()
WORKLOADS = ("pass", "connect", "cold", "png", "many")


def answering_kernels(server, count: int) -> list:
    """``count`` new kernels, each of which has answered a ``pass``. A kernel whose ZMQ port another
    socket took before the kernel could bind it dies at start, and again on each restart (the
    server keeps its ports), until the server gives it up: such a kernel is replaced."""
    kernels = [server.start_kernel() for _ in range(count)]
    for index, kernel in enumerate(kernels):
        for _ in range(3):
            try:
                kernel.run("pass")
                break
            except RemoteMagicError as exc:
                print(f"kernel {kernel.id[:8]} did not answer ({exc}); starting another")
                kernel = kernels[index] = server.start_kernel()
        else:
            raise SystemExit("new kernels keep dying at start; see the server's log")
        kernel.channel.close()  # whoever measures on it opens its own websocket
    return kernels


class RawKernel(LeanWebsocket):
    """The raw websocket limit on a kernel of its own (another client's iopub would reach it)."""

    def __init__(self, engine: Engine, token: str, kernel=None):
        self.kernel = kernel or answering_kernels(engine.server, 1)[0]
        super().__init__(engine.server, token, self.kernel.id)

    def trade_kernels(self, engine: Engine) -> None:
        """Move to the engine's kernel and the engine to this one's, so that a kernel process
        slower than the other (two cores, many processes) weighs on both alike."""
        engine.kernel.channel.close()
        self.ws.close()
        engine.kernel, self.kernel = self.kernel, engine.kernel
        self.connect(self.kernel.id)
        for _ in range(3):  # warm up the new websockets
            engine.run("pass")
            self.run("pass")

    def close(self) -> None:
        super().close()
        self.kernel.shutdown()


def median(samples: list[float]) -> float:
    return statistics.median(samples)


class Report:
    """Rows of (workload, contender, link, text), printed as one table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.notes: list[str] = []

    def add(self, workload: str, contender: str, link: str, text: str) -> None:
        self.rows.append((workload, contender, link, text))

    def print(self) -> None:
        links = list(dict.fromkeys(link for _, _, link, _ in self.rows))
        keys = list(dict.fromkeys((w, c) for w, c, _, _ in self.rows))
        cells = {(w, c, link): text for w, c, link, text in self.rows}
        widths = [max(len(w) for w, _ in keys), max(len(c) for _, c in keys)]
        colw = max([len(link) for link in links] + [len(text) for text in cells.values()])
        print(f"{'workload':{widths[0]}}  {'contender':{widths[1]}}  " + "  ".join(f"{link:{colw}}" for link in links))
        last = None
        for w, c in keys:
            label = w if w != last else ""
            last = w
            texts = [cells.get((w, c, link), "-") for link in links]
            print(f"{label:{widths[0]}}  {c:{widths[1]}}  " + "  ".join(f"{t:{colw}}" for t in texts))
        for note in self.notes:
            print(f"note: {note}")


def pass_round_trips(report: Report, launched, shell, links, args) -> None:
    """``pass`` through every contender, link by link; ratios against the ZMQ floor of that group."""
    floor = ZmqFloor()
    why = missing("ipyparallel")
    px = Ipyparallel(shell) if why is None else None
    if why:
        report.notes.append(why)
    dl_missing = missing("jupyter_kernel_client")
    if dl_missing:
        report.notes.append(dl_missing)
    try:
        for name, link in links.items():
            url = link_url(link, launched.url)
            opened, per_cell = [], {}
            try:
                magic = ShellMagic(url, launched.token)
                opened.append(magic)
                engine = Engine(url, launched.token)
                opened.append(engine)
                raw = RawKernel(engine, launched.token)
                opened.append(raw)
                contenders = {"%%remote": magic.run}
                if link is None:
                    contenders["engine in a cell magic"] = EngineCell(magic).run
                contenders.update({"engine": engine.run, "raw websocket": raw.run})
                if not dl_missing:
                    peer = Datalayer(url, launched.token)
                    opened.append(peer)
                    contenders["datalayer client"] = peer.run
                if px is not None and link is None:
                    contenders["ipyparallel %%px"] = px.run
                contenders["zmq floor"] = floor.run
                for run in contenders.values():  # warm up
                    for _ in range(3):
                        run("pass")
                slow = name == "50 ms link"
                rounds = max(2, args.rounds // 4) if slow else args.rounds
                per_round = 3 if slow else args.per_round
                samples = interleave(contenders, "pass", rounds // 2, per_round, None)
                raw.trade_kernels(engine)
                for contender, values in interleave(contenders, "pass", rounds - rounds // 2, per_round, None).items():
                    samples[contender] += values
                for contender in ("%%remote", "engine"):
                    with REST.count(contender, per_cell):
                        for _ in range(10):
                            contenders[contender]("pass")
            finally:
                for item in reversed(opened):
                    item.close()
            for contender, calls in per_cell.items():
                report.add("REST calls per cell", contender, name, f"{calls / 10:g}")
            base = median(samples["zmq floor"])
            for contender, values in samples.items():
                value = median(values)
                if slow and contender != "zmq floor":
                    text = f"{value * 1e3:.1f} ms = RTT+{(value - RTT) / base:.2f}x"
                else:
                    text = f"{value * 1e3:.2f} ms {value / base:.2f}x"
                report.add("pass (x floor)", contender, name, text)
            if "raw websocket" in samples:
                ratio = median(samples["engine"]) / median(samples["raw websocket"])
                report.add("pass (x floor)", "engine / raw websocket", name, f"{ratio:.2f}x")
    finally:
        if px is not None:
            px.close()
        floor.close()


def connects(report: Report, launched, links, args) -> None:
    """``connect`` and a first ``1+1`` on a running kernel: time, REST calls and network round trips."""
    import remote_magic

    engine = Engine(launched.url, launched.token)
    engine.run("1+1")  # a running kernel, past its start
    kernel_id = engine.kernel.id
    try:
        for name, link in links.items():
            url = link_url(link, launched.url)
            times: dict[str, list[float]] = {"connect": [], "attach + 1+1": [], "datalayer attach + 1+1": []}
            calls: dict[str, int] = {}
            for _ in range(args.connects):
                registry = remote_magic.Registry()
                with REST.count("connect", calls):
                    start = time.perf_counter()
                    registry.connect(url, token=launched.token, name="bench-connect")
                    times["connect"].append(time.perf_counter() - start)
                registry.clear()
                server = remote_magic.Server(url, launched.token)
                with REST.count("attach + 1+1", calls):
                    start = time.perf_counter()
                    assert server.kernel(kernel_id).run("1+1").ok
                    times["attach + 1+1"].append(time.perf_counter() - start)
                server.close()
                if not missing("jupyter_kernel_client"):
                    with REST.count("datalayer attach + 1+1", calls):
                        start = time.perf_counter()
                        peer = Datalayer(url, launched.token, kernel_id)
                        peer.run("1+1")
                        times["datalayer attach + 1+1"].append(time.perf_counter() - start)
                    peer.close()
            for what, values in times.items():
                if not values:
                    continue
                value = median(values)
                text = f"{value * 1e3:.1f} ms, {calls[what]} REST"
                if name == "50 ms link":
                    text += f", {value / RTT:.1f} RTT"
                report.add("connect", what, name, text)
    finally:
        engine.close()


def png_display(report: Report, launched, args) -> None:
    """One 20 MiB PNG: time against the raw websocket and the floor; peak memory against the payload."""
    engine = Engine(launched.url, launched.token)
    raw = RawKernel(engine, launched.token)
    floor = ZmqFloor()
    try:
        contenders = {"engine": engine.run, "raw websocket": raw.run, "zmq floor": floor.run}
        sizes = {name: run(PNG_CODE) for name, run in contenders.items()}  # warm up
        samples = interleave(contenders, PNG_CODE, args.png_rounds, 1, None)
        peaks = {}
        for name in ("engine", "raw websocket"):
            tracemalloc.start()
            contenders[name](PNG_CODE)
            peaks[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    finally:
        raw.close()
        engine.close()
        floor.close()
    wire = sizes["raw websocket"]
    base = median(samples["raw websocket"])
    for name, values in samples.items():
        text = f"{median(values) * 1e3:.0f} ms {median(values) / base:.2f}x raw"
        if name in peaks:
            text += f", peak {peaks[name] / 2**20:.0f} MiB = {peaks[name] / wire:.2f}x payload"
        report.add("20 MiB PNG", name, "direct", text)
    report.notes.append(f"PNG payload on the wire: {wire / 2**20:.1f} MiB of base64 in one message")


def many_kernels(report: Report, launched, args) -> None:
    """``MANY`` kernels, one thread each, ``pass`` in a loop: cells per second, engine vs raw
    websocket. Halfway through the rounds the engines and the raw websockets trade kernels."""
    server = Server(launched.url, launched.token)
    engines = [Engine(launched.url, launched.token, kernel.id) for kernel in answering_kernels(server, MANY)]
    raws = [RawKernel(engines[0], launched.token, kernel) for kernel in answering_kernels(server, MANY)]

    def burst(runs) -> float:
        def work(run):
            for _ in range(args.many_cells):
                run("pass")

        threads = [threading.Thread(target=work, args=(run,)) for run in runs]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return MANY * args.many_cells / (time.perf_counter() - start)

    contenders = {"engine": [engine.run for engine in engines], "raw websocket": [raw.run for raw in raws]}
    try:
        for runs in contenders.values():  # warm up
            burst(runs)
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        for round in range(args.many_rounds):  # who goes first alternates
            if round == args.many_rounds // 2:
                for raw, engine in zip(raws, engines):
                    raw.trade_kernels(engine)
            for name in sorted(rates, reverse=round % 2 == 1):
                rates[name].append(burst(contenders[name]))
    finally:
        for raw in raws:
            raw.close()
        for engine in engines:
            engine.kernel.shutdown()
            engine.close()
        server.close()
    base = median(rates["raw websocket"])
    for name, values in rates.items():
        report.add(f"{MANY} kernels x {MANY} threads", name, "direct", f"{median(values):.0f} cells/s {median(values) / base:.2f}x raw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds everywhere (a smoke run)")
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="run only this workload (repeatable)")
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    args.rounds, args.per_round = 20 // scale, 10
    args.connects = 7 // scale + 1
    args.png_rounds = 5 // scale + 1
    args.many_rounds, args.many_cells = 7 // scale + 1, 10
    args.cold = 6 // scale + 1

    load_before = os.getloadavg()[0]
    report = Report()
    launched = LaunchedServer(extra_args=("--ZMQChannelsWebsocketConnection.iopub_data_rate_limit=0",))
    links, notes = open_links(launched.url)
    report.notes += notes
    shell = InteractiveShell.instance()
    started = time.perf_counter()
    workloads = {
        "pass": lambda: pass_round_trips(report, launched, shell, links, args),
        "connect": lambda: connects(report, launched, links, args),
        "cold": lambda: cold_starts(report, launched, args.cold),
        "png": lambda: png_display(report, launched, args),
        "many": lambda: many_kernels(report, launched, args),
    }
    try:
        for name in args.only or WORKLOADS:
            workloads[name]()
    finally:
        for link in links.values():
            if link is not None:
                link.close()
        launched.stop()
    report.notes.append(
        f"machine load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs); "
        f"{time.perf_counter() - started:.0f} s"
    )
    report.print()


if __name__ == "__main__":
    main()
