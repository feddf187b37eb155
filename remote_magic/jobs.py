"""Background jobs: code sent to a remote kernel while the local process goes on.

:meth:`JobTable.submit` returns a :class:`Job` at once. Jobs on one kernel run one after the other,
in the order submitted: the next is sent when the previous one ended, so a queued job can still be
cancelled without the kernel ever seeing it. Jobs on different kernels run in parallel, each kernel
drained by a worker thread of its own while it has jobs. A job's outputs are collected as data
(:attr:`Job.outputs`) and, when it was given a :class:`~remote_magic.celloutput.CellOutput`, shown
live in the cell that started it. Background jobs never read stdin: a remote ``input()`` fails.
"""

from __future__ import annotations

import collections
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from .celloutput import CellOutput
from .errors import ExecutionTimeout, RemoteExecutionError, RemoteMagicError, UsageError
from .kernel import RemoteKernel
from .outputs import ExecutionResult, OutputList
from .protocol import Message
from .tables import Table

if TYPE_CHECKING:
    from .display import LiveDisplay, RemoteResult

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ENDED = (DONE, FAILED, CANCELLED)

#: How often a waiting thread wakes up (so that Ctrl-C is seen promptly on every platform).
_WAIT_SLICE = 0.5


class JobCancelled(RemoteMagicError):
    """The job was cancelled, so it has no result."""


class Job:
    """One background execution; future-like: :meth:`done`, :meth:`wait`, :meth:`result`, :meth:`cancel`."""

    def __init__(self, table: JobTable, number: int, kernel: RemoteKernel, code: str, **details: Any):
        self.table = table
        self.id = number
        self.kernel = kernel
        self.code = code
        self.name: str = details.get("name") or f"job{number}"
        self.connection: str = details.get("connection") or ""
        self.timeout: float | None = details.get("timeout")
        self.state = QUEUED
        self.submitted = time.monotonic()
        self.started: float | None = None
        self.ended: float | None = None
        self.reply: dict[str, Any] = {}
        self.exception: RemoteMagicError | None = None  # the job could not finish (link lost, kernel died)
        self._outputs = OutputList()
        self._cell: CellOutput | None = details.get("cell")
        self._display = _live_display(bool(details.get("safe_outputs")), kernel.id, self.connection) if self._cell else None
        self._on_message: Callable[[Message], None] | None = details.get("on_message")
        self._cancel_asked = False
        self._on_kernel = False  # the kernel is handling this job's request (an interrupt now reaches it)
        self._interrupt_lock = threading.Lock()
        self._finished = threading.Event()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name!r} on {self.connection or self.kernel.server.url} kernel {self.kernel.id[:8]}: {self.state}>"

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The outputs so far, as nbformat dicts (streams merged, clears and updates applied)."""
        return self._outputs.outputs

    @property
    def elapsed(self) -> float:
        """Seconds it has run (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    def done(self) -> bool:
        """Whether it ended: done, failed or cancelled."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job ends, at most ``timeout`` seconds (then :class:`ExecutionTimeout`;
        the job keeps running). Ctrl-C stops the waiting, not the job. Returns the job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished.wait(_WAIT_SLICE if deadline is None else min(_WAIT_SLICE, max(deadline - time.monotonic(), 0))):
            if deadline is not None and time.monotonic() >= deadline:
                raise ExecutionTimeout(
                    f"Job {self.id} ({self.name}) is still {self.state} after {timeout:g}s; it goes on "
                    f"(%remote cancel {self.id} or job.cancel() stops it)."
                )
        return self

    def result(self, timeout: float | None = None) -> ExecutionResult:
        """Its outputs and ``execute_reply`` once it ended (waiting as :meth:`wait` does). A remote
        error is in the result (``.error()``, ``.raise_for_error()``); a job that was cancelled, or
        could not finish, raises why."""
        self.wait(timeout)
        if self.state == CANCELLED:
            raise JobCancelled(f"Job {self.id} ({self.name}) was cancelled; it has no result.")
        if self.exception is not None:
            raise self.exception
        return ExecutionResult(self.outputs, self.reply)

    def error(self) -> RemoteExecutionError | None:
        """The remote error of a failed job (not raised), or None."""
        return ExecutionResult(self.outputs, self.reply).error()

    def cancel(self) -> bool:
        """Remove it if queued; interrupt the remote kernel if it is running. False if it had ended."""
        if self.table.dequeue(self):
            self._end(CANCELLED)
            return True
        if self.done():
            return False
        with self._interrupt_lock:
            self._cancel_asked = True
            interrupt_now = self._on_kernel  # else the first message of the request triggers it
        if interrupt_now:
            self.kernel.interrupt()
        return True

    # ------------------------------------------------------------------ run by the kernel's worker

    def run(self) -> None:
        if self._cancel_asked:  # cancelled between leaving the queue and starting
            self._end(CANCELLED)
            return
        self.state, self.started = RUNNING, time.monotonic()
        with self._cell.active() if self._cell else nullcontext():
            try:
                self.reply = self.kernel.stream(
                    self.code, self._take, input=None, stop_on_error=False, timeout=self.timeout,
                    on_timeout=self.kernel.interrupt,
                )
            except RemoteMagicError as exc:
                self.exception = exc
            finally:
                self._show_end()
        ok = self.exception is None and self.reply.get("status") == "ok"
        self._end(DONE if ok else CANCELLED if self._cancel_asked else FAILED)

    def _take(self, msg: Message) -> None:
        # ipykernel says busy before it arms its SIGINT handler (an interrupt then is ignored) and
        # execute_input after; a kernel that sends no execute_input is taken as begun by its output.
        if not self._on_kernel and not msg.get("late") and msg["msg_type"] != "status":
            with self._interrupt_lock:
                self._on_kernel, interrupt_now = True, self._cancel_asked
            if interrupt_now:
                self.kernel.interrupt()
        self._outputs.add(msg)
        if self._display is not None:
            self._display(msg)
        if self._on_message is not None:
            self._on_message(msg)

    def _show_end(self) -> None:
        """In its cell: the result as an output, the remote traceback, or why it could not finish."""
        display = self._display
        if display is None:
            return
        if display.result is not None:
            _show_result(display.result)
        display.show_error()
        if self.exception is not None:
            display.flush()
            print(f"{type(self.exception).__name__}: {self.exception}", file=sys.stderr)
        display.finish()

    def _end(self, state: str) -> None:
        self.state, self.ended = state, time.monotonic()
        self._finished.set()


class JobTable:
    """The jobs of this process, numbered from 1, and the queue of each kernel."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._numbers = itertools.count(1)
        self._queues: dict[RemoteKernel, collections.deque[Job]] = {}
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Job]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def submit(
        self,
        kernel: RemoteKernel,
        code: str,
        *,
        name: str | None = None,
        connection: str = "",
        timeout: float | None = None,
        cell: CellOutput | None = None,
        safe_outputs: bool = False,
        on_message: Callable[[Message], None] | None = None,
    ) -> Job:
        """Queue ``code`` on ``kernel`` and return its :class:`Job` at once. With ``cell``, its
        outputs are shown in that cell as they come; ``on_message`` sees every message."""
        if name and any(job.name == name and not job.done() for job in self):
            raise UsageError(f"A job named {name!r} is still running; wait for it, cancel it, or choose another name.")
        details = dict(name=name, connection=connection, timeout=timeout, cell=cell, safe_outputs=safe_outputs, on_message=on_message)
        job = Job(self, next(self._numbers), kernel, code, **details)
        with self._lock:
            self._jobs[job.id] = job
            queue = self._queues.get(kernel)
            if queue is None:
                queue = self._queues[kernel] = collections.deque()
                threading.Thread(target=self._drain, args=(kernel, queue), name=f"remote_magic job {kernel.id[:8]}", daemon=True).start()
            queue.append(job)
        return job

    def _drain(self, kernel: RemoteKernel, queue: collections.deque[Job]) -> None:
        """Run the kernel's jobs one after the other; the thread ends when its queue is empty."""
        while True:
            with self._lock:
                if not queue:
                    del self._queues[kernel]
                    return
                job = queue.popleft()
            job.run()

    def dequeue(self, job: Job) -> bool:
        """Take a job that has not started out of its kernel's queue; False if it is not queued."""
        with self._lock:
            queue = self._queues.get(job.kernel)
            if queue is None or job not in queue:
                return False
            queue.remove(job)
            return True

    def get(self, key: str | int) -> Job:
        """A job by number or name (the latest of that name)."""
        text = str(key).strip()
        if text.isdigit() and int(text) in self._jobs:
            return self._jobs[int(text)]
        named = [job for job in self if job.name == text]
        if not named:
            known = ", ".join(f"{job.id} ({job.name})" for job in self) or "none"
            raise UsageError(f"No job {text!r} (jobs: {known}); %remote jobs lists them.")
        return named[-1]

    def latest(self) -> Job:
        if not self._jobs:
            raise UsageError("No background jobs yet; start one with %%remote --bg.")
        return self._jobs[max(self._jobs)]

    def running_on(self, kernel: RemoteKernel) -> list[Job]:
        """The jobs running or queued on ``kernel``."""
        return [job for job in self if job.kernel == kernel and not job.done()]

    def note_busy(self, kernel: RemoteKernel) -> None:
        """Say so (on stderr) when a job runs on ``kernel``: a cell sent now waits until it ends."""
        running = [job for job in self.running_on(kernel) if job.state == RUNNING]
        if running:
            job = running[0]
            print(f"remote_magic: kernel {kernel.id[:8]} is running job {job.id} ({job.name}); this cell starts when it ends.", file=sys.stderr)

    def listing(self) -> Table:
        """The jobs as a table: id, name, connection, kernel, state, elapsed, cell."""
        rows = [
            {
                "id": job.id,
                "name": job.name,
                "connection": job.connection,
                "kernel": job.kernel.id[:8],
                "state": job.state,
                "elapsed": f"{job.elapsed:.1f}s",
                "cell": _first_line(job.code),
            }
            for job in self
        ]
        columns = ["id", "name", "connection", "kernel", "state", "elapsed", "cell"]
        return Table(rows, columns, title="Background jobs", empty="(no jobs: %%remote --bg runs a cell in the background)")


def _first_line(code: str, width: int = 40) -> str:
    line = next((text.strip() for text in code.splitlines() if text.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def _live_display(safe_outputs: bool, kernel_id: str, connection: str) -> LiveDisplay:
    from .display import (  # IPython is imported only for jobs shown in a cell
        LiveDisplay,
        kernel_origin,
    )

    return LiveDisplay(safe_outputs=safe_outputs, origin=kernel_origin(kernel_id, connection))


def _show_result(result: RemoteResult) -> None:
    from IPython.display import publish_display_data

    publish_display_data(result.data, result.metadata)


#: The jobs of this process (those the magics start among them).
default_table = JobTable()
