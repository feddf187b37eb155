"""Where a cell's output goes, kept so that another thread can write into that cell after it ended.

In a notebook the local kernel is ipykernel: a frontend puts an output in the cell whose request
the IOPub message names as its parent. ipykernel's streams and display publisher take that parent
from a context variable (``set_thread_parent``), falling back to the request running now. A
:class:`CellOutput` captured while a cell runs remembers the cell's request; inside
:meth:`CellOutput.active`, the calling thread's ``print``, ``display``, ``update_display`` and
``clear_output`` go to that cell, whichever cell runs meanwhile. Without ipykernel (terminal
IPython, a script) there is one place for output, the terminal, and ``active`` changes nothing.

JupyterLab and the classic notebook show such output in the cell it names as long as the cell is
not re-run or cleared. Some batch runners (nbclient, papermill) stop listening to a cell once it
has finished and drop what comes later.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any


class CellOutput:
    """The output target of the cell running when :meth:`capture` was called."""

    def __init__(self, shell: Any = None, parent: dict[str, Any] | None = None):
        self.shell = shell
        self.parent = parent  # the cell's execute_request, None outside ipykernel

    @classmethod
    def capture(cls, shell: Any = None) -> CellOutput:
        """The target of the cell running now (call it from the cell's own thread)."""
        if shell is None:
            from IPython.core.interactiveshell import InteractiveShell

            shell = InteractiveShell.instance() if InteractiveShell.initialized() else None
        kernel = getattr(shell, "kernel", None)
        get_parent = getattr(kernel, "get_parent", None)
        return cls(shell, get_parent() if callable(get_parent) else None)

    @property
    def in_notebook(self) -> bool:
        return bool(self.parent)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within this block, the calling thread's output goes to the captured cell."""
        with ExitStack() as stack:
            if self.parent:
                for target in (sys.stdout, sys.stderr, getattr(self.shell, "display_pub", None)):
                    set_parent = getattr(target, "set_thread_parent", None)
                    if callable(set_parent):  # ipykernel >= 6.29; older ones write to the running cell
                        stack.callback(target.reset_thread_parent, set_parent(self.parent))
            try:
                yield
            finally:
                sys.stdout.flush()  # sent before the block ends: nothing of it arrives afterwards
                sys.stderr.flush()
