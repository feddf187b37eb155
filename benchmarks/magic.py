"""``%%remote pass`` through a real IPython shell, side by side with the engine and the ZMQ floor.

Run as ``python benchmarks/magic.py [--rounds N]``. One run starts a private Jupyter Server and a
local kernel and interleaves the contenders round by round (see ``latency.py``). It prints
medians and the ratio magic/floor (target <= 1.5x). For reference it also times a local no-op
cell magic through the same shell: IPython's own cost of running any cell magic, which every
``%%remote`` cell pays before the package does anything. Timings are printed, never asserted.
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


class ShellNoop:
    """The same shell running a local cell magic that does nothing: IPython's own per-cell cost."""

    def __init__(self, shell: InteractiveShell):
        self.shell = shell
        shell.register_magic_function(lambda line, cell: None, "cell", "noop")

    def run(self, code: str) -> int:
        self.shell.run_cell("%%noop\n" + code, store_history=False)
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
        noop = ShellNoop(magic.shell)
        for contender in contenders:  # warm up
            for _ in range(5):
                contender.run("pass")
        samples = interleave(
            {"%%remote shell": magic.run, "engine": engine.run, "zmq floor": floor.run, "%%noop shell": noop.run},
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
    package = (med["%%remote shell"] - med["%%noop shell"]) / med["engine"]
    print(f"  (%%remote - %%noop)/engine {package:6.2f}x  (the magic layer alone; IPython's run_cell of a cell magic: {ms(med['%%noop shell']).strip()})")


if __name__ == "__main__":
    main()
