"""``%%remote pass`` latency of this tree against an earlier version of the package, in one run.

Run as ``python benchmarks/redesign.py [--ref REF] [--rounds N]``. ``REF`` (default: the last
version before the kernel channel became a router, ``744fa00^``) is exported with ``git archive``
into a temporary folder. Each version runs in its own process (a package cannot be imported twice
in one), both connected to the same private Jupyter Server; rounds alternate between them so that
both see the same machine load. Prints medians and the ratio now/before; nothing is asserted.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_ROUTER = "744fa00^"


def worker(url: str) -> None:
    """One version's side: read ``N`` on stdin, run N ``%%remote pass`` cells, print their times."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "remote_magic")
    import remote_magic

    remote_magic.connect(url, token=os.environ.pop("BENCH_TOKEN"), name="bench")
    print(json.dumps({"version": remote_magic.__file__}), flush=True)
    for line in sys.stdin:
        times = []
        for _ in range(int(line)):
            start = time.perf_counter()
            result = shell.run_cell("%%remote\npass", store_history=False)
            times.append(time.perf_counter() - start)
            if not result.success:
                raise SystemExit(f"%%remote failed: {result.error_in_exec!r}")
        print(json.dumps(times), flush=True)
    remote_magic.registry.clear()


def start_worker(package_root: Path, url: str, token: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(package_root), "BENCH_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, __file__, "--worker", url],
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
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)

    sys.path.insert(0, str(ROOT))
    from remote_magic.launch import LaunchedServer

    with tempfile.TemporaryDirectory(prefix="remote_magic-before-") as before:
        archive = subprocess.run(["git", "archive", args.ref, "remote_magic"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", before], input=archive, check=True)
        launched = LaunchedServer()
        workers = {}
        try:
            workers = {"now": start_worker(ROOT, launched.url, launched.token), "before": start_worker(Path(before), launched.url, launched.token)}
            for process in workers.values():
                batch(process, 10)  # warm up
            samples: dict[str, list[float]] = {name: [] for name in workers}
            for round_number in range(args.rounds):
                order = list(workers) if round_number % 2 == 0 else list(reversed(workers))
                for name in order:
                    samples[name] += batch(workers[name], args.per_round)
        finally:
            for process in workers.values():
                process.stdin.close()
                process.wait(30)
            launched.stop()
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"%%remote pass, median of {args.rounds * args.per_round} each, interleaved (before = {args.ref}):")
    for name, value in median.items():
        print(f"  {name:8s}{value * 1000:8.3f} ms")
    print(f"  now/before {median['now'] / median['before']:6.2f}x")


if __name__ == "__main__":
    main()
