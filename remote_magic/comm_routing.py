"""Comm messages from a kernel, delivered by comm id to whoever registered for them.

A comm outlives the request that opened it: its messages are routed by ``comm_id`` (and a
kernel's ``comm_open`` by ``target_name``), whichever request is pending, if any. What no consumer
claims goes to the request that caused it while that one is pending; otherwise it is kept in
:attr:`CommRoutes.unclaimed` (never mistaken for late output).

Callbacks run on the thread reading the kernel's socket at the time (the channel's reader thread,
or a thread waiting for a request of that kernel), one message at a time, in the order the kernel
sent them: they must be quick (put the message on a queue and return) and must not wait for another
message of the same kernel, which that thread would have to read. A callback may register or
unregister comms; a ``comm_open`` callback that registers its ``comm_id`` misses none of its messages.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

from .protocol import Message

log = logging.getLogger("remote_magic")

COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})

#: Called, on the thread reading the kernel's socket, with each comm message routed to it.
CommCallback = Callable[[Message], None]

#: How many unclaimed comm messages are kept (the oldest are dropped first).
UNCLAIMED_KEPT = 256


class CommRoutes:
    """Consumers of one kernel's comm messages, by comm id and by target name."""

    def __init__(self) -> None:
        self._by_id: dict[str, CommCallback] = {}
        self._by_target: dict[str, CommCallback] = {}
        self._lock = threading.Lock()
        self.unclaimed: collections.deque[Message] = collections.deque(maxlen=UNCLAIMED_KEPT)
        self.unclaimed_count = 0  # all there ever were, also those dropped from :attr:`unclaimed`

    def register(self, comm_id: str, callback: CommCallback) -> None:
        """Deliver every later message of comm ``comm_id`` to ``callback`` (until its ``comm_close``,
        which is delivered too, or :meth:`CommRoutes.unregister`)."""
        with self._lock:
            self._by_id[comm_id] = callback

    def unregister(self, comm_id: str) -> None:
        """Stop delivering the messages of ``comm_id`` to its callback."""
        with self._lock:
            self._by_id.pop(comm_id, None)

    def on_open(self, target_name: str, callback: CommCallback | None) -> None:
        """Deliver each ``comm_open`` the kernel sends for ``target_name`` to ``callback`` (None stops it)."""
        with self._lock:
            if callback is None:
                self._by_target.pop(target_name, None)
            else:
                self._by_target[target_name] = callback

    def claim(self, msg: Message) -> bool:
        """Give a comm message to its consumer; False when none claims it."""
        content = msg["content"]
        comm_id = content.get("comm_id")
        with self._lock:
            callback = self._by_id.get(comm_id) if isinstance(comm_id, str) else None
            if callback is None and msg["msg_type"] == "comm_open":
                callback = self._by_target.get(content.get("target_name"))  # type: ignore[arg-type]
            if callback is not None and msg["msg_type"] == "comm_close":
                self._by_id.pop(comm_id, None)  # type: ignore[arg-type]
        if callback is None:
            return False
        callback(msg)  # a consumer that fails is logged by the link, which reads on
        return True

    def keep_unclaimed(self, msg: Message) -> None:
        """Keep a comm message that no consumer and no pending request took."""
        self.unclaimed.append(msg)
        self.unclaimed_count += 1
        log.debug("Unclaimed %s for comm %s", msg["msg_type"], msg["content"].get("comm_id"))

    def take_unclaimed(self) -> list[Message]:
        """The unclaimed comm messages kept since the last call, oldest first."""
        taken = []
        while self.unclaimed:
            taken.append(self.unclaimed.popleft())
        return taken
