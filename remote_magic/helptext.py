"""Help text that reads well in every frontend: wrapped at word boundaries to a terminal's width,
unwrapped in a notebook (whose frontend then wraps it between words, never inside one), and
"did you mean" suggestions for misspelt names."""

from __future__ import annotations

import argparse
import difflib
import html
import textwrap
from collections.abc import Iterable

from .frontend import ipython_shell, text_width

#: The width argparse lays help out to in a notebook: no wrapping, the frontend wraps.
UNWRAPPED = 10_000
#: Preformatted help that the browser wraps between words (JupyterLab's own style breaks anywhere).
PRE_STYLE = "white-space:pre-wrap;word-break:normal;overflow-wrap:break-word;margin:0"


class HelpText:
    """Help as a cell output: plain text (terminals, logs) and HTML that wraps between words."""

    def __init__(self, text: str, markup: str | None = None):
        self.text = text
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup or f"<pre class='rm-help' style='{PRE_STYLE}'>{html.escape(self.text)}</pre>"

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(self.text)  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def show(help_text: HelpText) -> None:
    """Display ``help_text`` as the cell's output (printed outside IPython)."""
    if ipython_shell() is None:
        print(help_text.text)
        return
    from IPython.display import display

    display(help_text)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's layout, to the terminal's width, or unwrapped in a notebook."""

    def __init__(self, prog: str, **options: object):
        super().__init__(prog, width=text_width() or UNWRAPPED, **options)  # type: ignore[arg-type]


def wrap(text: str, width: int | None, indent: int) -> str:
    """``text`` wrapped between words to ``width`` (None: not at all), continuation lines indented."""
    if width is None or len(text) + indent <= width:
        return text
    lines = textwrap.wrap(text, max(width - indent, 20), break_long_words=False, break_on_hyphens=False)
    return ("\n" + " " * indent).join(lines)


def suggestion(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean `ls`?)`` for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""
