"""This tree against an earlier version of the package, in one run: ``%%remote pass`` latency,
or (``--workload png``) the time and peak memory of one 20 MiB PNG display.

Run as ``python benchmarks/redesign.py [--ref REF] [--rounds N] [--workload pass|png]``. ``REF``
(default: the last version before the kernel channel became a router, ``744fa00^``) is exported
with ``git archive`` into a temporary folder. Each version runs in its own process (a package
cannot be imported twice in one), both connected to the same private Jupyter Server; rounds
alternate between them so that both see the same machine load. Prints medians and the ratio
now/before (for png also each version's peak Python memory, by ``tracemalloc`` in a run of its
own, against the payload); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from workloads import PNG_CODE  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_ROUTER = "744fa00^"


def worker(url: str, workload: str) -> None:
    """One version's side: read ``N`` on stdin, run the workload N times, print their times (and,
    for png, the peak of one more run, traced, against the payload)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "remote_magic")
    import remote_magic

    connection = remote_magic.connect(url, token=os.environ.pop("BENCH_TOKEN"), name="bench")
    print(json.dumps({"version": remote_magic.__file__}), flush=True)
    kernel = connection.default_kernel()
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            if workload == "png":
                payload = len(kernel.run(PNG_CODE).outputs[0]["data"]["image/png"])
            elif not shell.run_cell("%%remote\npass", store_history=False).success:
                raise SystemExit("%%remote pass failed")
            times.append(time.perf_counter() - start)
        if workload == "png":
            tracemalloc.start()
            kernel.run(PNG_CODE)
            times.append(tracemalloc.get_traced_memory()[1] / payload)
            tracemalloc.stop()
        print(json.dumps(times), flush=True)
    remote_magic.registry.clear()


def start_worker(package_root: Path, url: str, token: str, workload: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(package_root), "BENCH_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, __file__, "--workload", workload, "--worker", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=package_root,
    )
    json.loads(process.stdout.readline())  # connected
    return process


def batch(process: subprocess.Popen, count: int) -> list[float]:
    process.stdin.write(f"{count}\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default=BEFORE_ROUTER, help="the earlier version (a git ref)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--workload", choices=("pass", "png"), default="pass")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.workload)

    sys.path.insert(0, str(ROOT))
    from remote_magic.launch import LaunchedServer

    with tempfile.TemporaryDirectory(prefix="remote_magic-before-") as before:
        archive = subprocess.run(["git", "archive", args.ref, "remote_magic"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", before], input=archive, check=True)
        launched = LaunchedServer()
        workers = {}
        try:
            workers = {
                "now": start_worker(ROOT, launched.url, launched.token, args.workload),
                "before": start_worker(Path(before), launched.url, launched.token, args.workload),
            }
            for process in workers.values():
                batch(process, 1 if args.workload == "png" else 10)  # warm up
            samples: dict[str, list[float]] = {name: [] for name in workers}
            peaks: dict[str, list[float]] = {name: [] for name in workers}
            for round_number in range(args.rounds):
                order = list(workers) if round_number % 2 == 0 else list(reversed(workers))
                for name in order:
                    values = batch(workers[name], args.per_round)
                    if args.workload == "png":
                        peaks[name].append(values.pop())
                    samples[name] += values
        finally:
            for process in workers.values():
                process.stdin.close()
                process.wait(30)
            launched.stop()
    median = {name: statistics.median(values) for name, values in samples.items()}
    what = "%%remote pass" if args.workload == "pass" else "20 MiB PNG display (RemoteKernel.run)"
    print(f"{what}, median of {args.rounds * args.per_round} each, interleaved (before = {args.ref}):")
    for name, value in median.items():
        peak = f", peak {max(peaks[name]):.2f}x payload" if peaks[name] else ""
        print(f"  {name:8s}{value * 1000:8.3f} ms{peak}")
    print(f"  now/before {median['now'] / median['before']:6.2f}x")


if __name__ == "__main__":
    main()
