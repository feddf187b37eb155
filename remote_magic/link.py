"""One persistent, self-healing websocket to one remote kernel.

Every message read from the websocket (:mod:`.wire`) goes to a :class:`.Router`, which delivers it
to the request it answers. A thread waiting for a request's messages reads them itself when it is
its turn (:mod:`.turns`); a reader thread reads when no request does. When the connection drops or
the link stops answering pings, the reader re-connects with the same client session id (the server
replays what it buffered meanwhile); requests in flight fail with :class:`ConnectionLost` if the
link stays down, and the next request connects again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref

from . import protocol
from .errors import AuthenticationError, ConnectionLost, NotFound, ProtocolError
from .protocol import Message
from .rest import RestClient
from .router import Event, Pending, Router
from .turns import LINGER, TURN, InterruptsHeld, Turns
from .wire import HandshakeTimeout, KernelSocket

log = logging.getLogger("remote_magic")

#: The longest the reader thread waits for a message at a time while no request is pending.
IDLE_WAIT = 1.0
#: One client session id for the life of the process, reused on every reconnect.
CLIENT_SESSION_ID = protocol.new_session_id()

# (kernel_id, session_id) -> the open link of this process using them. Two websockets with the
# same pair evict each other on the server, so a second link to a kernel takes its own session.
_claims: weakref.WeakValueDictionary[tuple[str, str], KernelLink] = weakref.WeakValueDictionary()
_claims_lock = threading.Lock()


class KernelLink:
    """The connection of one kernel: open, read, re-connect, send, close.

    ``ping_timeout``: a link that sends nothing for that long, although pinged, is taken for dead;
    requests in flight then fail within twice that. ``start_timeout``: how long to
    wait for a kernel that is still starting (the server holds the handshake until it answers).
    """

    def __init__(
        self,
        rest: RestClient,
        kernel_id: str,
        *,
        session_id: str = CLIENT_SESSION_ID,
        protocol_choice: str = "auto",
        connect_timeout: float = 30.0,
        max_retries: int = 5,
        ping_timeout: float = 10.0,
        start_timeout: float = 120.0,
    ):
        if protocol_choice not in ("auto", "v1", "legacy"):
            raise ValueError("protocol_choice must be 'auto', 'v1' or 'legacy'")
        self._rest = rest
        self.kernel_id = kernel_id
        self.session_id = session_id
        self.protocol_choice = protocol_choice
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.ping_timeout = ping_timeout
        self.start_timeout = start_timeout
        self.kernel_info: Message | None = None
        self.state = ObservedState()
        self.reconnects = 0
        self.malformed_frames = 0
        self.probes_answered = 0
        self._socket: KernelSocket | None = None
        self._turns = Turns()
        self._router = Router()
        self._reader: threading.Thread | None = None
        self._closed = False
        self._error: Exception | None = None  # why the channel closed, when it was not close()
        self._restarted = False  # the kernel was restarted: check output flows before a request
        self._open_lock = threading.RLock()
        self._connected = threading.Event()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<KernelLink {self.kernel_id} {self.protocol or 'unopened'} {state}>"

    # ------------------------------------------------------------------ connection

    @property
    def protocol(self) -> str | None:
        """``"v1"`` or ``"legacy"``, as the server selected; None before the first open."""
        if self._socket is None:
            return None
        return "v1" if self._socket.v1 else "legacy"

    @property
    def is_closed(self) -> bool:
        """True once closed for good (by :meth:`close`, or the kernel is gone or refused us)."""
        return self._closed

    @property
    def is_open(self) -> bool:
        return self._connected.is_set() and not self._closed

    def open(self) -> bool:
        """Connect if not connected; True when this was the first connection."""
        with self._open_lock:
            if self._closed:
                raise self._closed_error()
            if self._reader is not None and self._reader.is_alive():
                return
            first = self._reader is None
            self._claim_session()
            self._socket = self._connect_starting() if first else self._connect(self.connect_timeout)
            self._turns.broken = None
            self._connected.set()
            self._reader = threading.Thread(
                target=self._read_loop, name=f"remote_magic-{self.kernel_id[:8]}", daemon=True
            )
            self._reader.start()
        return first

    def close(self) -> None:
        """Close the websocket for good (the kernel keeps running); requests in flight end with
        ConnectionLost."""
        self._closed = True
        self._connected.clear()
        self._release_session()
        self._router.broadcast(Event("lost", error=self._closed_error()))
        if self._socket is not None:
            self._socket.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
        if self._socket is not None and (self._reader is None or not self._reader.is_alive()):
            deadline = time.monotonic() + 2
            while not self._turns.take():  # a request may be reading: it stops at the closed socket
                if time.monotonic() >= deadline:
                    return
                time.sleep(LINGER)
            try:
                self._socket.release()
            finally:
                self._turns.give_back()

    def _claim_session(self) -> None:
        """Use this channel's session id unless another open channel of this process has it for
        the same kernel; then take a fresh one (the two would evict each other, endlessly)."""
        with _claims_lock:
            holder = _claims.get((self.kernel_id, self.session_id))
            if holder is not None and holder is not self and not holder.is_closed:
                self.session_id = protocol.new_session_id()
            _claims[(self.kernel_id, self.session_id)] = self

    def _release_session(self) -> None:
        with _claims_lock:
            if _claims.get((self.kernel_id, self.session_id)) is self:
                del _claims[(self.kernel_id, self.session_id)]

    def _fail(self, error: Exception) -> None:
        """Close for good because of ``error``; pending and later calls raise it."""
        if self._closed:
            return
        self._error = error
        self._closed = True
        self._connected.clear()
        self._release_session()
        if self._socket is not None:
            self._socket.abort()
        self._router.broadcast(Event("lost", error=error))

    def _closed_error(self) -> Exception:
        if self._error is not None:
            return type(self._error)(*self._error.args)  # a fresh one each time: no stacked tracebacks
        return ConnectionLost(f"The channel to kernel {self.kernel_id} was closed; get a new one.")

    def _connect(self, timeout: float) -> KernelSocket:
        socket = KernelSocket(
            self._rest,
            self.kernel_id,
            self.session_id,
            protocol_choice=self.protocol_choice,
            ping_timeout=self.ping_timeout,
        )
        socket.connect(timeout)
        return socket

    def _connect_starting(self) -> KernelSocket:
        """The first connection: the server holds the handshake until a new kernel answers, up
        to its own ``kernel_info_timeout``; wait for it (up to ``start_timeout``), saying so."""
        deadline = time.monotonic() + self.start_timeout
        told = False
        while True:
            try:
                return self._connect(self.connect_timeout)
            except HandshakeTimeout:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConnectionLost(
                        f"Kernel {self.kernel_id} was still starting after {self.start_timeout:g}s (the server is "
                        "waiting for it to answer); check the kernel's log on the server, or raise start_timeout."
                    ) from None
                if not told:
                    told = True
                    self._router.notify(f"kernel {self.kernel_id} is still starting; waiting up to {left:.0f}s more.")
                    log.info("Kernel %s is still starting; waiting", self.kernel_id)

    # ------------------------------------------------------------------ reading

    def _read_loop(self) -> None:
        """Read while no request does, and re-connect when the socket broke; until closed."""
        turns = self._turns
        while not self._closed:
            if (turns.broken is None and turns.asked_lately()) or not turns.take():
                time.sleep(LINGER)
                continue
            try:
                if turns.broken is not None:
                    if not self._recover(turns.broken):
                        return
                else:
                    self._read_once(LINGER if self._router.pending_count else IDLE_WAIT)
            finally:
                turns.give_back()

    def next_item(self, pending: Pending, seconds: float) -> Message | Event:
        """The next message or event for ``pending``, within ``seconds`` (else ``queue.Empty``).
        The calling thread reads the socket itself when it gets the turn."""
        deadline = time.monotonic() + seconds
        turns, inbox = self._turns, pending.inbox
        try:
            while True:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise
                    if turns.ask(pending):  # kept while reading on; given back on leaving
                        self._read_once(left)
                        if turns.broken:  # the socket broke: the reader thread re-connects
                            turns.give_back()
                        continue
                    item = inbox.get(timeout=left)
                if item is not TURN:
                    return item
        finally:
            turns.leave(pending)

    def _read_once(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a message and route it; the caller has the turn. A Ctrl-C
        while waiting loses nothing; one while the message is read waits until it is routed."""
        socket = self._socket
        try:
            ready = socket.wait(seconds)
        except ConnectionLost as exc:
            self._lose(socket, exc)
            return
        if not ready:
            return
        with InterruptsHeld():
            try:
                msg = socket.receive()
            except ProtocolError as exc:
                self.malformed_frames += 1
                log.warning("Kernel %s: dropped a malformed message (%s)", self.kernel_id, exc)
                self._router.notify(f"dropped a malformed message from the server ({exc}).")
                return
            except ConnectionLost as exc:
                self._lose(socket, exc)
                return
            if msg is None:
                return
            self.state.see(msg)
            try:
                self._router.route(msg)
            except Exception:  # a bug in routing must not stop the reading
                log.exception("Kernel %s: could not route a %s message", self.kernel_id, msg.get("msg_type"))

    def _lose(self, socket: KernelSocket, error: ConnectionLost) -> None:
        """``socket`` broke: nobody reads until the reader thread has re-connected."""
        if socket is self._socket and self._turns.broken is None:
            self._connected.clear()
            self._turns.broken = error

    def _recover(self, cause: ConnectionLost) -> bool:
        """Re-connect with the same session id. Requests in flight fail once an attempt fails (the
        link is really down); after ``max_retries`` the reader stops and the next request connects
        again. False when reading is over."""
        self._connected.clear()
        delay, failed = 0.25, False
        for _ in range(self.max_retries):
            if self._closed:
                return False
            try:
                socket = self._connect(min(self.connect_timeout, self.ping_timeout))
            except (AuthenticationError, NotFound) as exc:
                self._fail(exc)
                return False
            except ConnectionLost as exc:
                if not failed:
                    failed = True
                    self._router.broadcast(Event("lost", error=self._link_down(exc)))
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
                continue
            if self._closed:  # closed meanwhile
                socket.close()
                return False
            self._socket, self._turns.broken = socket, None
            self.reconnects += 1
            self._router.gaps.watch()
            self.state.forget()
            self._connected.set()
            log.info("Reconnected to kernel %s", self.kernel_id)
            return True
        log.warning("Kernel %s: %s Gave up after %d tries; the next request tries again.", self.kernel_id, cause, self.max_retries)
        return False

    def _link_down(self, cause: Exception) -> ConnectionLost:
        return ConnectionLost(
            f"Lost the connection to kernel {self.kernel_id} ({cause}); outputs until then were shown. "
            "The cell may still be running remotely; run the next cell when the network is back."
        )

    # ------------------------------------------------------------------ requests

    def send(self, msg: Message) -> None:
        """Send one message, waiting for a reconnect in progress if need be."""
        for _ in range(2):
            if not self._wait_connected():
                break
            socket = self._socket
            try:
                socket.send(msg)
                return
            except ConnectionLost:
                if self._socket is socket:  # else the reader already has a new socket up
                    self._connected.clear()
                    socket.abort()  # make sure the reader notices and reconnects
        if self._closed:
            raise self._closed_error()
        raise ConnectionLost(f"Could not send to kernel {self.kernel_id}: the websocket is down.")

    def _wait_connected(self) -> bool:
        """Wait for a reconnect in progress; False if it fails or takes longer than connect_timeout."""
        deadline = time.monotonic() + self.connect_timeout
        while not self._connected.wait(0.05):
            if self._closed or time.monotonic() >= deadline or not (self._reader and self._reader.is_alive()):
                return False
        return True


class ObservedState:
    """The kernel's execution state as its IOPub status messages tell it: truer than a server's
    model, which some servers never update. Busy while any request it began is not yet idle (a
    control request answered during a long cell is busy and idle within the cell's busy time)."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._state: str | None = None

    @property
    def value(self) -> str | None:
        """``busy``, ``idle``, ``starting``, ``restarting`` or ``dead``; None when unknown."""
        if self._state in ("busy", "idle"):
            return "busy" if self._busy else "idle"
        return self._state

    def see(self, msg: Message) -> None:
        if msg["msg_type"] != "status" or msg["channel"] != "iopub":
            return
        state = msg["content"].get("execution_state")
        parent = protocol.parent_msg_id(msg)
        if state == "busy" and parent:
            self._busy.add(parent)
        elif state == "idle" and parent:
            self._busy.discard(parent)
        else:
            self._busy.clear()  # the server's own restarting/dead, or a kernel starting again
        self._state = state

    def forget(self) -> None:
        """Messages may have been lost (the link was down): unknown until the next status."""
        self._busy.clear()
        self._state = None
