"""The life of one request on a kernel channel: its messages, its deadline, Ctrl-C, and the
checks that keep a silent or vanished kernel from holding it forever."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from . import protocol
from .errors import ExecutionTimeout, ProtocolError, RequestDropped
from .protocol import Message
from .router import Event, Pending

if TYPE_CHECKING:
    from .channel import KernelChannel

#: Grace given to an interrupted request (Ctrl-C, timeout) to finish and drain its outputs.
INTERRUPT_GRACE = 10.0
#: While a request is pending and the kernel is silent this long, ask the server whether the
#: kernel still exists (it keeps the websocket of a kernel shut down by someone else open) and
#: ask the kernel which process answers (a restart by someone else may leave no trace on iopub).
LIVENESS_INTERVAL = 5.0
#: How long a kernel interrupted by someone else has to answer before it is taken for restarted.
CONFIRM_TIMEOUT = 10.0
#: How long after a request's ``idle`` its reply may still be on its way before the kernel is asked
#: whether one comes (shell and iopub travel apart: the reply mostly follows within a millisecond).
REPLY_GRACE = 0.1


class Exchange:
    """Send ``pending.request`` and yield its messages until its reply (and ``idle``) arrived."""

    def __init__(
        self,
        channel: KernelChannel,
        pending: Pending,
        timeout: float | None,
        *,
        wait_idle: bool,
        on_keyboard_interrupt: Callable[[], None] | None = None,
        on_timeout: Callable[[], None] | None = None,
    ):
        self.channel = channel
        self.pending = pending
        self.request = pending.request
        self.timeout = timeout
        self.wait_idle = wait_idle
        # Each hook fires once; then the request gets a grace period to finish and drain.
        self.hooks: dict[type, Callable[[], None] | None] = {
            KeyboardInterrupt: on_keyboard_interrupt,
            ExecutionTimeout: on_timeout,
        }
        self.fired: set[type] = set()
        self.deadline: float | None = None
        self.confirm_by: float | None = None  # an interrupt nobody here asked for: is it a restart?
        self.process: str | None = None  # the kernel process running the request
        # A probe sent on the request's channel when its idle came before its reply and the reply
        # is overdue: None until sent, then whether it could be (see _ask_whether_a_reply_comes).
        self.order_probe: bool | None = None
        self.reply_due: float | None = None  # the idle came first: when the reply is overdue
        self.malformed_before = channel.malformed_frames

    def run(self) -> Iterator[Message]:
        channel, msg_id = self.channel, self.request["msg_id"]
        channel.send(self.request)
        if self.timeout is not None:
            self.deadline = time.monotonic() + self.timeout
        reply: Message | None = None
        got_idle, confirmed = not self.wait_idle, False
        while True:
            if reply is not None and got_idle:
                if self.confirm_by is None and self._interrupted_by_someone_else(reply):
                    self.confirm_by = time.monotonic() + CONFIRM_TIMEOUT
                    channel.attach_probe(self.pending)
                elif self.confirm_by is None or confirmed:
                    break
            item = self._next()
            if item is None:
                continue
            if isinstance(item, Event):
                self._on_event(item)
            if protocol.parent_msg_id(item) == msg_id:
                self.process = self.process or item["header"].get("session")
                if item["channel"] == self.request["channel"]:
                    reply, self.reply_due = item, None
                elif item["msg_type"] == "status" and item["content"].get("execution_state") == "idle":
                    got_idle = True
                    if reply is None and self.request["channel"] == "shell":
                        self.reply_due = time.monotonic() + REPLY_GRACE
                yield item
            elif item["channel"] in ("control", "shell"):  # a probe's answer: which process is the kernel now
                channel.probes_answered += 1
                if self.process is not None and item["header"].get("session") not in (None, self.process):
                    channel.kernel_gone("restarting")
                confirmed = self.confirm_by is not None
                if item["channel"] == self.request["channel"] and reply is None:
                    self._no_reply_coming()
        if ExecutionTimeout in self.fired:
            self._raise_timed_out()

    def _raise_timed_out(self) -> None:
        raise ExecutionTimeout(
            f"The request ran past its {self.timeout:g}s timeout and kernel {self.channel.kernel_id} was "
            "interrupted; its outputs were shown."
        )

    def _interrupted_by_someone_else(self, reply: Message) -> bool:
        """The cell ended in a KeyboardInterrupt nobody here asked for: a restart or shutdown by
        another client interrupts first, so look closer before calling it a plain interrupt."""
        content = reply["content"]
        return (
            self.request["msg_type"] == "execute_request"
            and content.get("status") == "error"
            and content.get("ename") == "KeyboardInterrupt"
            and not self.fired
        )

    def _ask_whether_a_reply_comes(self) -> bool:
        """The request's ``idle`` came before its reply, which is overdue. Either the reply is on
        its way (shell and iopub travel apart) or the kernel dropped the request (ipykernel does
        when an interrupt lands outside the code). A second request on the same channel tells
        which: the kernel answers requests of a channel one after the other, and the server relays
        them in order. True when it was time to ask."""
        if self.reply_due is None or self.order_probe or time.monotonic() < self.reply_due:
            return False
        self.order_probe = self.channel.attach_probe(self.pending, channel="shell")
        if not self.order_probe:  # the link is down: ask again later
            self.reply_due = time.monotonic() + LIVENESS_INTERVAL
        return True

    def _no_reply_coming(self) -> None:
        """Raise why the request ended without its reply (or its idle) reaching it."""
        if self.channel.malformed_frames > self.malformed_before:
            raise ProtocolError(
                f"Kernel {self.channel.kernel_id} is idle but this request never saw its end: a malformed message "
                "from the server was probably it. Its outputs until then were shown; re-run it if they are incomplete."
            )
        if ExecutionTimeout in self.fired:  # the interrupt at the deadline landed outside the code
            self._raise_timed_out()
        raise RequestDropped(
            f"Kernel {self.channel.kernel_id} ended the request without a reply: an interrupt reached it while it "
            "prepared or wrapped up the code, which may not have run (its outputs were shown)."
        )

    def _on_event(self, event: Event) -> None:
        if event.kind == "gone":
            self.channel.kernel_gone(event.detail["state"])
        error = event.error or self.channel.link_error()
        raise type(error)(*error.args)

    def _next(self) -> Message | Event | None:
        """The next item for this request; None after a quiet spell that checked on the kernel."""
        try:
            return self.channel.next_item(self.pending, self._wait())
        except queue.Empty:
            if not self._ask_whether_a_reply_comes():
                self._on_silence()
            return None
        except (KeyboardInterrupt, ExecutionTimeout) as exc:
            if not self._fire(KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else ExecutionTimeout):
                raise
            return None

    def _wait(self) -> float:
        now = time.monotonic()
        wait = LIVENESS_INTERVAL
        for limit in (self.deadline, self.confirm_by, None if self.order_probe else self.reply_due):
            if limit is not None:
                wait = min(wait, max(limit - now, 0.0))
        return wait

    def _fire(self, kind: type) -> bool:
        """Run the hook of ``kind`` the first time; False when there is none left to run."""
        if kind in self.fired or self.hooks[kind] is None:
            return False
        self.fired.add(kind)
        self.hooks[kind]()
        self.deadline = _grace_deadline(self.deadline)
        return True

    def _on_silence(self) -> None:
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            if not self._fire(ExecutionTimeout):
                raise ExecutionTimeout(
                    f"Kernel {self.channel.kernel_id} did not finish in time; it may still be running "
                    "(interrupt it, or raise the timeout)."
                )
            return
        channel = self.channel
        model = channel.kernel_model()  # raises NotFound when the kernel is gone
        if self.confirm_by is not None and now >= self.confirm_by:
            channel.kernel_gone("restarting")  # interrupted by someone else and silent since
        if channel.malformed_frames > self.malformed_before and model and model.get("execution_state") == "idle":
            self._no_reply_coming()
        channel.attach_probe(self.pending)


def _grace_deadline(deadline: float | None) -> float:
    """The deadline after an interrupt: a short grace period, never later than a pending deadline."""
    grace = time.monotonic() + INTERRUPT_GRACE
    if deadline is None or deadline <= time.monotonic():
        return grace
    return min(deadline, grace)
