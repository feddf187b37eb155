"""Progress of a transfer, shown the way the frontend shows progress: an ipywidgets bar in a
notebook, one self-updating line (like ``tqdm``) in a terminal, nothing in a script or a log.

:func:`progress_bar` gives a callable ``progress(done_bytes, total_bytes)`` with a
``close(ok)``. Nothing is drawn until a transfer reports a first part done with more to come, so
a transfer of one piece shows nothing; when the transfer ends the bar is marked done (or failed).
"""

from __future__ import annotations

import html
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol

from .frontend import in_notebook, is_terminal
from .tables import human_size

#: Least time between two redraws (the last one is always drawn).
REDRAW_INTERVAL = 0.1
_BAR_WIDTH = 20


class TransferProgress(Protocol):
    """``progress(done, total)`` after each part of a transfer; ``close(ok)`` at its end."""

    def __call__(self, done: int, total: int) -> None: ...

    def close(self, ok: bool = True) -> None: ...


class Meter:
    """Counts bytes against time: percentage, rate and time left, as text. The base of the views."""

    def __init__(self, label: str):
        self.label = label
        self.started = time.monotonic()
        self.done = 0
        self.total = 0
        self.shown = False
        self._drawn_at = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, max(total, done)
        if not self.shown and self.done >= self.total:
            return  # finished in one piece: nothing worth a bar
        now = time.monotonic()
        if self.shown and self.done < self.total and now - self._drawn_at < REDRAW_INTERVAL:
            return
        self._drawn_at = now
        self.shown = True
        self.draw()

    def close(self, ok: bool = True) -> None:
        """Mark the bar done (``ok``) or stopped; a transfer never drawn stays silent."""
        if self.shown:
            self.finish(ok)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-6)

    def rate(self) -> str:
        return f"{human_size(self.done / self.elapsed)}/s"

    def left(self) -> str:
        """Time left at the average rate so far, ``m:ss``."""
        speed = self.done / self.elapsed
        return _clock((self.total - self.done) / speed) if speed else "?"

    def status(self) -> str:
        """``12.0 MB of 40.0 MB · 9.1 MB/s · 0:03 left``."""
        return f"{human_size(self.done)} of {human_size(self.total)} · {self.rate()} · {self.left()} left"

    def summary(self, ok: bool) -> str:
        """The final line: ``Uploading x: done, 40.0 MB in 0:04 (9.8 MB/s)`` or where it stopped."""
        if ok:
            return f"{self.label}: done, {human_size(self.done)} in {_clock(self.elapsed)} ({self.rate()})"
        return f"{self.label}: stopped at {human_size(self.done)} of {human_size(self.total)}"

    def draw(self) -> None:  # the views draw
        pass

    def finish(self, ok: bool) -> None:
        pass


class LineProgress(Meter):
    """One line on a terminal, redrawn in place with ``\\r``; it ends with a newline when closed."""

    def __init__(self, label: str, stream: IO[str] | None = None):
        super().__init__(label)
        self.stream = stream or sys.stderr

    def line(self) -> str:
        filled = int(self.fraction * _BAR_WIDTH)
        bar = "█" * filled + " " * (_BAR_WIDTH - filled)
        return f"{self.label} {self.fraction:4.0%} |{bar}| {self.status()}"

    def draw(self) -> None:
        width = shutil.get_terminal_size().columns - 1  # a line that wrapped could not be redrawn in place
        self.stream.write("\r" + self.line()[:width] + "\x1b[K")
        self.stream.flush()

    def finish(self, ok: bool) -> None:
        self.stream.write("\r" + self.summary(ok) + "\x1b[K\n")
        self.stream.flush()


class WidgetProgress(Meter):
    """An ipywidgets bar with a status line, in a notebook; when done, it is replaced by one
    line of text (so a saved notebook keeps a readable record, not a dead widget)."""

    def __init__(self, label: str):
        super().__init__(label)
        self._handle: Any = None
        self._box: Any = None
        self._bar: Any = None
        self._text: Any = None

    def draw(self) -> None:
        if self._handle is None:
            self._open()
        self._bar.value = self.fraction
        self._text.value = f"<span style='white-space:nowrap'>{html.escape(f'{self.fraction:.0%} · {self.status()}')}</span>"

    def _open(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self._bar = widgets.FloatProgress(min=0.0, max=1.0, description=self.label,
                                          style={"description_width": "initial"})
        self._text = widgets.HTML()
        self._box = widgets.HBox([self._bar, self._text], layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self._box.add_class("rm-progress")
        self._handle = display(self._box, display_id=True)

    def finish(self, ok: bool) -> None:
        line = ("✓ " if ok else "✗ ") + self.summary(ok)
        state = "done" if ok else "stopped"
        markup = f"<div class='rm-progress-{state}'>{html.escape(line)}</div>"
        self._handle.update({"text/html": markup, "text/plain": line}, raw=True)
        for widget in (self._bar, self._text, self._box):
            widget.close()


class NoProgress(Meter):
    """Neither a notebook nor a terminal: nothing is drawn (the caller says what was done)."""


def progress_bar(label: str) -> Meter:
    """The progress view for this frontend: a widget in a notebook, a line on a terminal, else none."""
    if in_notebook():
        return WidgetProgress(label)
    if is_terminal():
        return LineProgress(label)
    return NoProgress(label)


@contextmanager
def showing_progress(label: str) -> Iterator[Meter]:
    """``with showing_progress("Uploading x") as progress:`` pass ``progress`` to a transfer; the
    bar is closed as done when the block succeeds, as stopped when it fails."""
    progress = progress_bar(label)
    try:
        yield progress
    except BaseException:
        progress.close(ok=False)
        raise
    progress.close(ok=True)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
