"""``clear_output(wait=True)`` clears at the next output, not at once: in the API's outputs and in the
live display of ``%%remote`` (where the frontend applies it, so the flag must reach it)."""

from __future__ import annotations

import sys

import pytest
from IPython.core.displaypub import DisplayPublisher

CLEAR_THEN_PRINT = (
    "from IPython.display import clear_output, display\n"
    "print('old', flush=True)\n"
    "display('shown before')\n"
    "clear_output(wait=True)\n"
    "print('new', flush=True)\n"
)


def texts(outputs):
    return [o.get("text") or o["data"]["text/plain"] for o in outputs]


def test_clear_output_wait_clears_at_the_next_output(kernel):
    result = kernel.run(CLEAR_THEN_PRINT + "clear_output(wait=True)\ndisplay('last')")
    assert texts(result.outputs) == ["'last'"]
    result = kernel.run(CLEAR_THEN_PRINT)
    assert texts(result.outputs) == ["new\n"]  # not merged into the cleared 'old'


def test_clear_output_wait_with_nothing_after_keeps_the_outputs(kernel):
    result = kernel.run("from IPython.display import clear_output\nprint('kept')\nclear_output(wait=True)")
    assert texts(result.outputs) == ["kept\n"]


class _Recorder(DisplayPublisher):
    """The shell's display publisher, recording displays and clears in order with stdout writes."""

    def __init__(self, events):
        super().__init__()
        self.events = events

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False):
        self.events.append(("display", data.get("text/plain")))

    def clear_output(self, wait=False):
        self.events.append(("clear", wait))


class _Stdout:
    def __init__(self, events):
        self.events = events

    def write(self, text):
        if self.events and self.events[-1][0] == "stdout":
            self.events[-1] = ("stdout", self.events[-1][1] + text)
        elif text:
            self.events.append(("stdout", text))
        return len(text)

    def flush(self):
        pass


@pytest.fixture
def recorded(remote_shell):
    events = []
    original = remote_shell.display_pub
    remote_shell.display_pub = _Recorder(events)
    yield events
    remote_shell.display_pub = original


def test_live_display_passes_clear_output_wait_to_the_frontend_in_order(remote_shell, recorded, monkeypatch):
    monkeypatch.setattr(sys, "stdout", _Stdout(recorded))  # here: pytest swaps sys.stdout between phases
    result = remote_shell.run_cell("%%remote\n" + CLEAR_THEN_PRINT)
    assert result.success, result.error_in_exec
    assert recorded == [
        ("stdout", "old\n"),
        ("display", "'shown before'"),
        ("clear", True),  # the frontend clears when 'new' arrives: no flicker in between
        ("stdout", "new\n"),
    ]
