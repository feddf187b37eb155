"""Run one cell on several connections at once: :func:`run_on` for data, :func:`show_on` for a cell.

Each target's kernel is drained by a thread of its own; the calling thread takes their messages
from one queue, so everything is shown from the cell's own thread and a Ctrl-C there interrupts
every target that is still running (a second one stops waiting). In a cell, stream lines carry the
target's name (``[stdout:alpha] ...``, as ipyparallel labels its engines), each rich output is
preceded by an ``[output:alpha]`` line, results by ``Out[alpha]:`` and errors by ``[error:alpha]``.
A target's ``clear_output`` is not applied: it would clear the other targets' output too.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .display import LiveDisplay
from .errors import TargetsFailed, UsageError
from .kernel import RemoteKernel
from .outputs import ExecutionResult, OutputList
from .protocol import Message

if TYPE_CHECKING:
    from .registry import Registry

Sink = Callable[[str, Message], None]


class _Ended:
    """A target's last item: its ``execute_reply`` content, or an error reply saying why there is none."""

    def __init__(self, reply: dict[str, Any]):
        self.reply = reply


def target_names(registry: Registry, targets: str | Iterable[str]) -> list[str]:
    """The connection names ``targets`` stands for: ``"all"``, ``"alpha,beta"`` or a list."""
    names = targets.split(",") if isinstance(targets, str) else list(targets)
    names = [name.strip() for name in names if name.strip()]
    if names == ["all"]:
        names = [connection.name for connection in registry]
        if not names:
            raise UsageError("--on all: no server connected; run %remote connect URL first.")
    if not names:
        raise UsageError("--on needs connection names, e.g. --on alpha,beta (or --on all).")
    return list(dict.fromkeys(names))


def run_on(
    registry: Registry,
    targets: str | Iterable[str],
    code: str,
    *,
    kernel: str | None = None,
    timeout: float | None = None,
    on_message: Sink | None = None,
) -> dict[str, ExecutionResult]:
    """Run ``code`` on the default kernel (or ``kernel``, see :meth:`Connection.kernel_for`) of each
    target connection in parallel; return one :class:`ExecutionResult` per connection name. An
    unknown name raises :class:`ConnectionNotFound` before anything runs. A
    target whose request could not finish (link lost, kernel died) has an error result naming why."""
    kernels = {name: registry.get(name).kernel_for(kernel) for name in target_names(registry, targets)}
    return fan_out(kernels, code, timeout=timeout, on_message=on_message)


def fan_out(
    kernels: dict[str, RemoteKernel], code: str, *, timeout: float | None = None, on_message: Sink | None = None
) -> dict[str, ExecutionResult]:
    """Run ``code`` on each kernel in parallel; ``on_message(name, msg)`` sees every message, in
    the calling thread. Ctrl-C interrupts every kernel still running and keeps collecting."""
    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    outputs = {name: OutputList() for name in kernels}
    replies: dict[str, dict[str, Any]] = {}
    for name, remote in kernels.items():
        threading.Thread(target=_drain, args=(name, remote, code, timeout, inbox), name=f"remote_magic on {name}", daemon=True).start()
    running, interrupted = set(kernels), False
    while running:
        try:
            name, item = inbox.get()
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            for still_running in running:
                kernels[still_running].interrupt()
            continue
        if isinstance(item, _Ended):
            running.discard(name)
            replies[name] = item.reply
            continue
        outputs[name].add(item)
        if on_message is not None:
            on_message(name, item)
    return {name: ExecutionResult(outputs[name].outputs, replies[name]) for name in kernels}


def _drain(name: str, remote: RemoteKernel, code: str, timeout: float | None, inbox: queue.SimpleQueue) -> None:
    reply: dict[str, Any] = {}
    try:
        for msg in remote.execute(code, allow_stdin=False, timeout=timeout, on_timeout=remote.interrupt):
            inbox.put((name, msg))
            if msg["channel"] == "shell":
                reply = msg["content"]
    except Exception as exc:  # a RemoteMagicError, or anything else: never leave the caller waiting
        reply = {"status": "error", "ename": type(exc).__name__, "evalue": str(exc), "traceback": []}
    inbox.put((name, _Ended(reply)))


class StreamLabels:
    """Puts ``[stdout:NAME] `` in front of each line, so that interleaved streams stay readable."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}  # per stream: the label of the line being written
        self._open: dict[str, bool] = {}  # per stream: that line has no newline yet

    def label(self, stream: str, name: str, text: str) -> str:
        label = f"[{stream}:{name}] "
        pieces = []
        if self._open.get(stream) and self._last.get(stream) != label:
            pieces.append("\n")  # another target's line was left open: end it first
            self._open[stream] = False
        for line in text.splitlines(keepends=True):
            if not self._open.get(stream):
                pieces.append(label)
            pieces.append(line)
            self._open[stream] = not line.endswith("\n")
        self._last[stream] = label
        return "".join(pieces)


class LabelledDisplay(LiveDisplay):
    """:class:`LiveDisplay` of one target among several: labelled streams and outputs, no clears."""

    def __init__(self, name: str, labels: StreamLabels, *, safe_outputs: bool = False):
        super().__init__(safe_outputs=safe_outputs)
        self.name = name
        self.labels = labels

    def _on_stream(self, content: dict[str, Any]) -> None:
        stream = "stderr" if content.get("name") == "stderr" else "stdout"
        super()._on_stream({"name": stream, "text": self.labels.label(stream, self.name, content.get("text", ""))})

    def _publish(self, content: dict[str, Any], *, update: bool = False) -> None:
        if not update:
            self._line(f"[output:{self.name}]")
        super()._publish(content, update=update)

    def _on_clear_output(self, content: dict[str, Any]) -> None:
        pass  # it would clear every target's output

    def _line(self, text: str) -> None:
        self.flush()
        print(text, flush=True)

    def show_end(self) -> None:
        """The target's result (``Out[NAME]:``) or its remote traceback (``[error:NAME]``)."""
        if self.result is not None:
            self._line(f"Out[{self.name}]:")
            super()._publish({"data": self.result.data, "metadata": self.result.metadata})
        if self.error is not None:
            self.flush()
            print(f"[error:{self.name}]", file=sys.stderr)
            self.show_error()
        self.finish()


def show_on(
    registry: Registry,
    targets: str,
    code: str,
    *,
    kernel: str | None = None,
    timeout: float | None = None,
    safe_outputs: bool = False,
    raise_on_error: bool = True,
) -> dict[str, ExecutionResult]:
    """:func:`run_on` with each target's outputs shown live and labelled; raises
    :class:`TargetsFailed` naming the targets that failed (unless not ``raise_on_error``)."""
    labels = StreamLabels()
    names = target_names(registry, targets)
    displays = {
        name: LabelledDisplay(name, labels, safe_outputs=safe_outputs or registry.get(name).safe_outputs) for name in names
    }
    try:
        results = run_on(registry, names, code, kernel=kernel, timeout=timeout, on_message=lambda name, msg: displays[name](msg))
    finally:
        for display in displays.values():
            display.flush()
    for name, result in results.items():
        display = displays[name]
        if display.error is None and not result.ok:  # could not finish: no remote traceback to show
            display.error = {"ename": result.reply.get("ename"), "evalue": result.reply.get("evalue"), "traceback": []}
        display.show_end()
    failed = {name: result for name, result in results.items() if not result.ok}
    if failed and raise_on_error:
        raise TargetsFailed(failed, [name for name in results if name not in failed])
    return results
