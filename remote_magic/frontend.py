"""What the local frontend is: a notebook (an IPython kernel with a frontend drawing its outputs),
a terminal, or neither (a script, a pipe, a log). Outputs are shaped to suit each."""

from __future__ import annotations

import shutil
import sys
from typing import IO, Any


def ipython_shell() -> Any:
    """The running IPython shell, or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    return get_ipython()


def in_notebook() -> bool:
    """True inside an IPython kernel (JupyterLab, Notebook, VS Code, nbclient): outputs are drawn
    by a frontend that wraps text itself and shows widgets."""
    return getattr(ipython_shell(), "kernel", None) is not None


def is_terminal(stream: IO[str] | None = None) -> bool:
    """True when ``stream`` (stderr by default) is a terminal, outside a notebook."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return not in_notebook() and bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def text_width() -> int | None:
    """Columns to wrap plain text to: None in a notebook (its frontend wraps), else the terminal's
    width (``COLUMNS`` when set, 80 when unknown)."""
    if in_notebook():
        return None
    return max(shutil.get_terminal_size().columns, 40)
