"""Whose turn it is to read a kernel's socket, and a Ctrl-C held back while a message is read.

A thread waiting for a request's messages reads the socket itself rather than being handed each
message by another thread (a hand-off costs more than the rest of the client's work on a ``pass``).
One thread reads at a time, the one with the turn (two must never read one TLS socket at once): it
routes what it reads to whichever request it belongs, and gives the turn back once it has its own.
A thread that finds the turn taken waits *in line* on its request's inbox, where the holder routes
its messages; giving the turn back hands :data:`TURN` to those in line. The link's reader thread
reads whenever no request has asked to for a moment (:data:`LINGER`): messages nobody waits for
(comms, late output, the server's own status) and those of a request whose consumer is busy
elsewhere are read all the same.
"""

from __future__ import annotations

import _signal  # signal's own functions, without the enum conversions of the signal module's wrappers
import threading
import time
from typing import Any

from .router import Event, Pending

#: Put in the inbox of a request waiting in line: the turn is free, take it.
TURN = Event("turn")
#: How long the reader thread leaves the socket to the requests after one last asked to read it.
LINGER = 0.025


class Turns:
    """The turn to read one socket. Taking it is a single atomic step that records the taker, so
    a thread interrupted right after taking it can still tell that it has it (:meth:`leave`)."""

    def __init__(self) -> None:
        self._holder: dict[str, int] = {}
        self._line: dict[Pending, None] = {}  # requests waiting for their messages or the turn
        self._asked = 0.0  # when a request last asked to read
        #: Why the socket broke (a ConnectionLost), None while it works: requests only wait in line
        #: until the reader thread has replaced it.
        self.broken: Exception | None = None

    def take(self) -> bool:
        """Take the turn if it is free."""
        me = threading.get_ident()
        return self._holder.setdefault("turn", me) == me

    def give_back(self) -> None:
        """Free the turn, if this thread has it, and tell those in line."""
        if self._holder.get("turn") != threading.get_ident():
            return
        del self._holder["turn"]
        for pending in list(self._line):
            pending.inbox.put(TURN)

    def ask(self, pending: Pending) -> bool:
        """A request wants to read: take the turn, or stand in line (True: taken)."""
        self._asked = time.monotonic()
        if self.broken is None and self.take():
            return True
        self._line[pending] = None
        if self.broken is None and self.take():  # given back before the line was joined: nobody told us
            self._line.pop(pending, None)
            return True
        return False

    def leave(self, pending: Pending) -> None:
        """The request stops waiting: out of the line, and the turn back if this thread has it."""
        self._line.pop(pending, None)
        self.give_back()

    def asked_lately(self) -> bool:
        """Whether a request asked to read within :data:`LINGER`: the reader thread keeps away."""
        return time.monotonic() - self._asked < LINGER


class InterruptsHeld:
    """Hold back a Ctrl-C (SIGINT) that arrives inside the block, then raise it as the block ends:
    a message half read, or read and not yet routed, would be lost. Only the main thread gets
    KeyboardInterrupt; elsewhere, and when SIGINT has no Python handler, this does nothing."""

    __slots__ = ("_previous", "_held")

    def __enter__(self) -> InterruptsHeld:
        self._previous: Any = None
        self._held: tuple[Any] | None = None  # the frame the signal came in
        if threading.current_thread() is threading.main_thread():
            previous = _signal.getsignal(_signal.SIGINT)
            if callable(previous):
                self._previous = previous
                _signal.signal(_signal.SIGINT, self._hold)
        return self

    def _hold(self, signum: int, frame: Any) -> None:
        self._held = (frame,)

    def __exit__(self, *exc_info: Any) -> None:
        if self._previous is None:
            return
        _signal.signal(_signal.SIGINT, self._previous)
        if self._held is not None:
            self._previous(_signal.SIGINT, self._held[0])
