"""``%%remote pass`` through a real IPython shell, side by side with the engine and the ZMQ floor.

Run as ``python benchmarks/magic.py [--rounds N]``. One run starts a private Jupyter Server and a
local kernel and interleaves the contenders round by round (see ``latency.py``). It prints
medians and the ratio magic/floor (target <= 1.5x). For reference it also times the engine called
from a bare cell magic in the same shell: the engine plus IPython's own cost of running a cell
magic, so that ``%%remote`` against it is the magic layer alone. (A no-op cell magic timed in a
loop understates IPython's share: between two remote round trips its code and data are no
longer in the CPU's caches.) Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics

from IPython.core.interactiveshell import InteractiveShell
from latency import (  # benchmarks/ is on sys.path
    Engine,
    LaunchedServer,
    ZmqFloor,
    interleave,
    ms,
)

from remote_magic.display import LiveDisplay


class ShellMagic:
    """What a notebook user runs: a ``%%remote`` cell through IPython's ``run_cell``."""

    def __init__(self, url: str, token: str):
        self.shell = InteractiveShell.instance()
        if "remote_magic" not in self.shell.extension_manager.loaded:
            self.shell.run_line_magic("load_ext", "remote_magic")
        import remote_magic

        self.connection = remote_magic.connect(url, token=token, name="bench")

    def run(self, code: str) -> int:
        result = self.shell.run_cell("%%remote\n" + code, store_history=False)
        if not result.success:
            raise SystemExit(f"%%remote failed: {result.error_in_exec!r}")
        return 0

    def close(self) -> None:
        import remote_magic

        remote_magic.registry.remove("bench")


class EngineCell:
    """The engine called from a bare cell magic in the shell of ``magic``, on its kernel: what a
    ``%%remote`` cell costs without the magic layer."""

    def __init__(self, magic: ShellMagic):
        self.shell = shell = magic.shell
        kernel = magic.connection.kernel_for()
        shell.register_magic_function(lambda line, cell: kernel.stream(cell, LiveDisplay(), input=None) and None, "cell", "engine")

    def run(self, code: str) -> int:
        result = self.shell.run_cell("%%engine\n" + code, store_history=False)
        if not result.success:
            raise SystemExit(f"%%engine failed: {result.error_in_exec!r}")
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds (each runs every contender)")
    parser.add_argument("--per-round", type=int, default=10, help="executions per contender per round")
    args = parser.parse_args()

    launched = LaunchedServer()
    contenders = []
    try:
        magic = ShellMagic(launched.url, launched.token)
        contenders.append(magic)
        engine = Engine(launched.url, launched.token)
        contenders.append(engine)
        floor = ZmqFloor()
        contenders.append(floor)
        cell = EngineCell(magic)
        for contender in contenders:  # warm up
            for _ in range(5):
                contender.run("pass")
        samples = interleave(
            {"%%remote shell": magic.run, "engine in a cell": cell.run, "engine": engine.run, "zmq floor": floor.run},
            "pass",
            args.rounds,
            args.per_round,
            None,
        )
    finally:
        for contender in reversed(contenders):
            contender.close()
        launched.stop()

    med = {name: statistics.median(values) for name, values in samples.items()}
    print(f"'pass' round trip, median of {args.rounds * args.per_round} each (interleaved):")
    for name, value in med.items():
        print(f"  {name:16s}{ms(value)}")
    magic_ratio = med["%%remote shell"] / med["zmq floor"]
    print("ratios:")
    print(f"  %%remote/floor    {magic_ratio:6.2f}x  (target <= 1.5x)  {'ok' if magic_ratio <= 1.5 else 'MISSED'}")
    print(f"  %%remote/engine   {med['%%remote shell'] / med['engine']:6.2f}x  (cost of the magic layer and IPython's run_cell)")
    print(f"  %%remote/engine in a cell  {med['%%remote shell'] / med['engine in a cell']:6.2f}x  (the magic layer alone)")


if __name__ == "__main__":
    main()
