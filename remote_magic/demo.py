"""``python -m remote_magic.demo``: run the quickstart notebook for real and show what came back.

The notebook runs in a real local IPython kernel (with nbclient, as Jupyter would run it) and starts
its own private Jupyter Server with ``%remote launch``, so nothing needs to be running first. The
executed notebook is written to ``artifacts/`` and each code cell's outputs are printed as text.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .contents import cell_source, output_text
from .errors import RemoteMagicError

REPOSITORY = Path(__file__).resolve().parent.parent
QUICKSTART = REPOSITORY / "demo_notebooks" / "quickstart.ipynb"
OUTPUT = REPOSITORY / "artifacts" / "quickstart.executed.ipynb"

CellHook = Callable[..., Any]


class DemoError(RemoteMagicError):
    """The demo cannot run here (a missing notebook or tool)."""


class NotebookFailed(DemoError):
    """A cell raised; :attr:`notebook` is the notebook as executed up to there."""

    def __init__(self, message: str, notebook: Any):
        super().__init__(message)
        self.notebook = notebook


def execute_notebook(
    path: str | Path,
    *,
    timeout: float = 300,
    on_cell_executed: CellHook | None = None,
    kernel_log: Path | None = None,
) -> Any:
    """Execute a notebook with nbclient in a new local kernel of this Python and return it executed
    (nbformat). Cells tagged ``raises-exception`` may fail; any other failure raises
    :class:`NotebookFailed`. ``kernel_log`` is a file for what the kernel process itself prints."""
    try:
        import nbformat
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as exc:
        raise DemoError(f"Running notebooks needs nbclient ({exc.name} is missing): pip install nbclient, or run make demo.") from None
    notebook_path = Path(path)
    if not notebook_path.is_file():
        raise DemoError(f"No notebook at {notebook_path}; run this from a clone of the repository.")
    notebook = nbformat.read(notebook_path, as_version=4)
    # Only this interpreter's own kernel, whatever other "python3" kernelspecs the machine has.
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=timeout,
        resources={"metadata": {"path": str(notebook_path.parent)}},
        on_cell_executed=on_cell_executed,
    )
    with open(kernel_log or os.devnull, "wb") as log:
        try:
            client.execute(**({"stdout": log, "stderr": log} if kernel_log else {}))
        except CellExecutionError as exc:
            raise NotebookFailed(f"{notebook_path.name}: {exc.ename}: {exc.evalue}", notebook) from None
        finally:
            for cell in notebook.cells:
                if cell.get("outputs"):
                    cell.outputs = merge_streams(cell.outputs)
    return notebook


def merge_streams(outputs: list[Any]) -> list[Any]:
    """Consecutive stream outputs of one name as one, as a notebook frontend shows them (a kernel
    may send one ``print`` in several messages)."""
    merged: list[Any] = []
    for output in outputs:
        last = merged[-1] if merged else {}
        if output.get("output_type") == last.get("output_type") == "stream" and last.get("name") == output.get("name"):
            last["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def summary(notebook: Any, *, max_lines: int = 8, width: int = 110) -> str:
    """Each code cell's first source line and its outputs as text: long lines wrapped between
    words, long outputs cut after ``max_lines``."""
    lines = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        first = (cell_source(cell).strip().splitlines() or [""])[0]
        expected = "   (raises on purpose)" if "raises-exception" in cell.metadata.get("tags", []) else ""
        lines.append(f"[{cell.get('execution_count') or ' '}] {first}{expected}")
        text = "\n".join(output_text(output).rstrip("\n") for output in cell.get("outputs", []))
        shown = [part for line in text.splitlines() for part in _wrapped(line, width)]
        lines += ["    " + line for line in shown[:max_lines]]
        if len(shown) > max_lines:
            lines.append(f"    … ({len(shown) - max_lines} more lines in the executed notebook)")
    return "\n".join(lines)


def _wrapped(line: str, width: int) -> list[str]:
    """``line`` as lines of at most ``width`` columns, broken between words (a longer word stays whole)."""
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_long_words=False,
                         break_on_hyphens=False, drop_whitespace=True) or [""]


def main(argv: list[str] | None = None) -> int:
    """Run a notebook (the quickstart by default), write it executed, print what came back."""
    parser = argparse.ArgumentParser(prog="python -m remote_magic.demo", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default=str(QUICKSTART), help="notebook to run (default: the quickstart)")
    parser.add_argument("--output", help="where to write the executed notebook (default: artifacts/NAME.executed.ipynb)")
    options = parser.parse_args(argv)
    source = Path(options.notebook)
    output = Path(options.output) if options.output else OUTPUT.with_name(f"{source.stem}.executed.ipynb")
    print(f"Running {source} in a local IPython kernel ...", flush=True)
    failed: NotebookFailed | None = None
    output.parent.mkdir(parents=True, exist_ok=True)
    log_path = output.with_suffix(".kernel.log")
    try:
        notebook = execute_notebook(source, kernel_log=log_path)
    except NotebookFailed as exc:
        notebook, failed = exc.notebook, exc
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import nbformat

    nbformat.write(notebook, output)
    print(f"\nExecuted notebook: {output.resolve()}\n\nWhat came back, cell by cell:\n")
    print(summary(notebook))
    if failed is not None:
        print(f"\nThe demo failed: {failed} (the local kernel's own log: {log_path.resolve()})", file=sys.stderr)
        return 1
    cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    print(f"\nAll {cells} code cells ran. Open the executed notebook in Jupyter to see the rich outputs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
