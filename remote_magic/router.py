"""Deliver each message from a kernel to the request it answers.

One reader at a time feeds :meth:`Router.route`; any number of requests are in flight, each with
its own inbox, found by the ``msg_id`` its messages name as parent. What belongs to no pending request is
handled explicitly: output of a request that already ended (or was abandoned) is kept as *late*
output for whoever shows it next, never taken for another request's output; the server's own
``dead``/``restarting`` status, and the ``shutdown_reply`` a kernel broadcasts when another client
stops or restarts it, reach every pending request. Comm messages go to their consumers first (see
:mod:`.comm_routing`), whichever request is pending.
"""

from __future__ import annotations

import collections
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .comm_routing import COMM_TYPES, CommRoutes
from .protocol import Message

#: How many ended requests are remembered, so their late output is recognised as theirs.
_RECENT = 256


@dataclass
class Event:
    """Something that happened to the kernel or the link rather than a message of a request."""

    kind: str  # "gone": the kernel died or was restarted/stopped; "lost": the link is down
    detail: dict[str, Any] = field(default_factory=dict)
    error: Exception | None = None


class Pending:
    """One request in flight: its messages arrive in :attr:`inbox`, in order."""

    def __init__(self, request: Message):
        self.request = request
        self.msg_id: str = request["msg_id"]
        self.ids = [self.msg_id]  # the request and any probes sent on its behalf
        self.inbox: queue.SimpleQueue[Message | Event] = queue.SimpleQueue()

    def deliver(self, item: Message | Event) -> bool:
        """Take a message or an event; True when a waiting consumer will see it."""
        self.inbox.put(item)
        return True


class Answer(Pending):
    """A request nobody waits on: its reply is kept when it comes, and routing ends there (or
    when the kernel or the link goes away, leaving no reply)."""

    def __init__(self, request: Message, router: Router):
        super().__init__(request)
        self.router = router
        self.reply: Message | None = None
        self.answered = threading.Event()

    def deliver(self, item: Message | Event) -> bool:
        if isinstance(item, Event) or item["channel"] == self.request["channel"]:
            self.reply = None if isinstance(item, Event) else item
            self.router.end(self)
            self.answered.set()
        return False


class Router:
    """Routes messages by parent ``msg_id``; keeps late output of ended requests."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._late: collections.deque[Message] = collections.deque()
        self._idle_events: list[Event] = []
        self._lock = threading.Lock()
        self.gaps = GapTracker()
        self.comms = CommRoutes()

    def open(self, request: Message | Pending) -> Pending:
        """Start routing the replies of ``request`` (before it is sent), to a :class:`Pending`
        made for it or to the one given."""
        pending = request if isinstance(request, Pending) else Pending(request)
        with self._lock:
            self._pending[pending.msg_id] = pending
        return pending

    def attach(self, pending: Pending, msg_id: str) -> None:
        """Deliver the replies of another message (a probe sent for ``pending``) to it too."""
        with self._lock:
            pending.ids.append(msg_id)
            self._pending[msg_id] = pending

    def end(self, pending: Pending) -> None:
        """The request is over (done, failed or abandoned): later output of it is late output."""
        with self._lock:
            for msg_id in pending.ids:
                self._pending.pop(msg_id, None)
            self._ended[pending.msg_id] = None
            while len(self._ended) > _RECENT:
                self._ended.popitem(last=False)
        # Whatever reached the inbox after its consumer stopped reading is late output too.
        while True:
            try:
                item = pending.inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Event):
                continue
            if item["msg_type"] in COMM_TYPES:
                self.comms.keep_unclaimed(item)
            else:
                self._keep_if_output(item)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def route(self, msg: Message) -> None:
        """Deliver one message read from the kernel's socket."""
        lost = self.gaps.see(msg)
        if lost:
            self.notify(
                f"{lost} message(s) from the kernel were lost while the connection was down (the server did "
                "not keep them); the outputs before and after are shown."
            )
        is_comm = msg["msg_type"] in COMM_TYPES
        if is_comm and self.comms.claim(msg):
            return
        parent_id = protocol.parent_msg_id(msg)
        with self._lock:
            pending = self._pending.get(parent_id) if parent_id else None
            if pending is None:
                ended = parent_id in self._ended if parent_id else False
        if pending is not None:
            pending.deliver(msg)
        elif is_comm:
            self.comms.keep_unclaimed(msg)
        elif ended:
            self._keep_if_output(msg)
        else:
            gone = kernel_gone(msg)
            if gone is not None and not self.broadcast(Event("gone", gone)):
                self._idle_events.append(Event("gone", gone))

    def broadcast(self, event: Event) -> int:
        """Give ``event`` to every pending request; return how many have a consumer waiting for it."""
        with self._lock:
            targets = set(self._pending.values())
        return sum(pending.deliver(event) for pending in targets)

    def take_idle_events(self) -> list[Event]:
        """Events that came while no request was pending, oldest first."""
        taken, self._idle_events = self._idle_events, []
        return taken

    def notify(self, text: str) -> None:
        """Show a one-line notice in every pending request's output (as remote stderr)."""
        with self._lock:
            targets = set(self._pending.values())
        for pending in targets:
            pending.deliver(notice(text, pending.request))

    def _keep_if_output(self, msg: Message) -> None:
        if msg["msg_type"] in protocol.OUTPUT_TYPES:
            msg["late"] = True
            self._late.append(msg)

    def take_late(self) -> list[Message]:
        """Late output that arrived since the last call, oldest first (each marked ``late``)."""
        taken = []
        while self._late:
            taken.append(self._late.popleft())
        return taken


class GapTracker:
    """Notices kernel messages that never arrived.

    ipykernel message ids end in ``_{pid}_{counter}``, the counter counting every message that
    kernel process sends. IOPub reaches every client in order, so once the websocket is back, the
    counters the kernel used meanwhile that this client never saw (less the replies it did get on
    other channels) are messages lost while the connection was down.
    """

    def __init__(self) -> None:
        self._process: str | None = None
        self._last_iopub = -1
        self._others: collections.deque[int] = collections.deque(maxlen=256)
        self._watching = False

    def see(self, msg: Message) -> int:
        """Take note of ``msg``; return how many messages were lost just before it (0 if none)."""
        process, counter = _counter(msg)
        if counter is None:
            return 0
        if process != self._process:
            self._process, self._last_iopub, self._watching = process, -1, False
            self._others.clear()
        if msg.get("channel") != "iopub":
            self._others.append(counter)
            return 0
        lost = 0
        if self._watching and self._last_iopub >= 0:
            accounted = sum(1 for other in self._others if self._last_iopub < other < counter)
            lost = max(counter - self._last_iopub - 1 - accounted, 0)
            self._watching = False
        self._last_iopub = max(self._last_iopub, counter)
        return lost

    def watch(self) -> None:
        """The connection was re-established: measure the gap at the next IOPub message."""
        self._watching = True


def _counter(msg: Message) -> tuple[str | None, int | None]:
    msg_id = msg["header"].get("msg_id")
    if not isinstance(msg_id, str):
        return None, None
    process, _, number = msg_id.rpartition("_")
    if not process or not number.isdigit():
        return None, None
    return process, int(number)


def kernel_gone(msg: Message) -> dict[str, Any] | None:
    """What a message says about the kernel going away, if it is such a message: the server's
    ``dead``/``restarting`` status, or a kernel's ``shutdown_reply`` broadcast on IOPub."""
    msg_type, content = msg["msg_type"], msg["content"]
    if msg_type == "status" and not msg["parent_header"]:
        state = content.get("execution_state")
        if state in ("dead", "restarting"):
            return {"state": state, "from_server": True}
    elif msg_type == "shutdown_reply" and msg.get("channel") == "iopub":
        return {"state": "restarting" if content.get("restart") else "shutdown", "from_server": False}
    return None


def notice(text: str, request: Message) -> Message:
    """A one-line notice shown in a request's output, as a stderr stream of that request."""
    return {
        "header": {"msg_id": "", "msg_type": "stream"},
        "msg_id": "",
        "msg_type": "stream",
        "parent_header": dict(request["header"]),
        "metadata": {"remote_magic": "notice"},
        "content": {"name": "stderr", "text": f"remote_magic: {text}\n"},
        "buffers": [],
        "channel": "iopub",
    }
