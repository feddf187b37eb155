"""One persistent websocket to one remote kernel, and the execute loop over it.

A reader thread owns the socket: it decodes frames, keeps only messages answering this client
(and the server's own ``dead``/``restarting`` status), and re-connects with the same client
session id when the socket drops, so the server replays what it buffered meanwhile.
"""

from __future__ import annotations

import collections
import logging
import queue
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import websocket

from . import protocol
from .errors import (
    AuthenticationError,
    ConnectionLost,
    ExecutionTimeout,
    KernelDied,
    NotFound,
    RemoteMagicError,
)
from .protocol import Message
from .rest import RestClient

log = logging.getLogger("remote_magic")

#: One client session id for the life of the process, reused on every reconnect.
CLIENT_SESSION_ID = protocol.new_session_id()

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
_INTERRUPT_GRACE = 10.0
#: While a request is pending and the kernel is silent this long, ask the server whether the
#: kernel still exists (it keeps the websocket of a kernel shut down by someone else open) and
#: ask the kernel which process answers (it sends no status when someone else restarts it).
_LIVENESS_INTERVAL = 5.0

# (kernel_id, session_id) -> the open channel of this process using them. Two websockets with the
# same pair evict each other on the server, so a second channel to a kernel takes its own session.
_claims: weakref.WeakValueDictionary[tuple[str, str], KernelChannel] = weakref.WeakValueDictionary()
_claims_lock = threading.Lock()


class _Dropped:
    """Put in the inbox when the connection is gone for good."""

    def __init__(self, error: Exception):
        self.error = error


class KernelChannel:
    """The websocket of one kernel. Use :meth:`execute`; it opens the connection on first use."""

    def __init__(
        self,
        rest: RestClient,
        kernel_id: str,
        *,
        session_id: str = CLIENT_SESSION_ID,
        protocol_choice: str = "auto",
        connect_timeout: float = 30.0,
        max_retries: int = 5,
    ):
        if protocol_choice not in ("auto", "v1", "legacy"):
            raise ValueError("protocol_choice must be 'auto', 'v1' or 'legacy'")
        self._rest = rest
        self.kernel_id = kernel_id
        self.session_id = session_id
        self.protocol_choice = protocol_choice
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.kernel_info: Message | None = None
        self.reconnects = 0
        self._ws: websocket.WebSocket | None = None
        self._v1 = False
        self._inbox: queue.SimpleQueue[Message | _Dropped] = queue.SimpleQueue()
        self._reader: threading.Thread | None = None
        self._closed = False
        self._error: Exception | None = None  # why the channel closed, when it was not close()
        self._restarted = False  # the server restarted the kernel: check output flows before a request
        self._lock = threading.RLock()  # one request at a time
        self._send_lock = threading.Lock()
        self._connected = threading.Event()
        self._recent_requests: collections.deque[str] = collections.deque(maxlen=64)
        self._probes: collections.deque[str] = collections.deque(maxlen=8)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<KernelChannel {self.kernel_id} {self.protocol or 'unopened'} {state}>"

    # ------------------------------------------------------------------ connection

    @property
    def protocol(self) -> str | None:
        """``"v1"`` or ``"legacy"``, as the server selected; None before the first open."""
        if self._ws is None:
            return None
        return "v1" if self._v1 else "legacy"

    @property
    def is_closed(self) -> bool:
        """True once closed for good (by :meth:`close` or after reconnecting failed)."""
        return self._closed

    @property
    def is_open(self) -> bool:
        return self._connected.is_set() and not self._closed

    def open(self) -> None:
        """Connect (if not connected) and wait for the kernel to answer ``kernel_info``."""
        with self._lock:
            if self._closed:
                raise self._closed_error()
            if self._reader is not None:
                return
            self._claim_session()
            self._ws = self._connect()
            self._connected.set()
            self._reader = threading.Thread(
                target=self._read_loop, name=f"remote_magic-{self.kernel_id[:8]}", daemon=True
            )
            self._reader.start()
            self.kernel_info = self._first_kernel_info()

    def _first_kernel_info(self) -> Message:
        """Ask on the control channel first: a kernel busy with a long cell (one being attached
        to, say) answers there at once, where on shell the answer waits for the cell to end.
        Kernels that do not answer on control are asked on shell."""
        try:
            return self.request("kernel_info_request", {}, timeout=min(5.0, self.connect_timeout), channel="control")
        except ExecutionTimeout:
            return self.request("kernel_info_request", {}, timeout=self.connect_timeout)

    def close(self) -> None:
        """Close the websocket for good (the kernel keeps running)."""
        self._closed = True
        self._connected.clear()
        self._release_session()
        ws = self._ws
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:  # already broken: nothing left to close
                ws.abort()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)

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
        self._inbox.put(_Dropped(error))

    def _closed_error(self) -> Exception:
        if self._error is not None:
            return type(self._error)(*self._error.args)  # a fresh one each time: no stacked tracebacks
        return ConnectionLost(f"The channel to kernel {self.kernel_id} was closed; get a new one.")

    def _connect(self) -> websocket.WebSocket:
        url = self._rest.url.websocket("kernels", self.kernel_id, "channels", query={"session_id": self.session_id})
        subprotocols = None if self.protocol_choice == "legacy" else [protocol.V1_SUBPROTOCOL]
        ws = websocket.WebSocket(skip_utf8_validation=True, enable_multithread=True, sslopt=self._sslopt())
        try:
            ws.connect(
                url,
                header=self._rest.auth.header_lines(),
                subprotocols=subprotocols,
                timeout=self.connect_timeout,
            )
        except websocket.WebSocketBadStatusException as exc:
            raise self._handshake_error(exc.status_code) from None
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLost(
                f"Cannot open the websocket of kernel {self.kernel_id} on {self._rest.url} "
                f"({type(exc).__name__}); check the server is running."
            ) from None
        chosen = ws.getsubprotocol()
        if self.protocol_choice == "v1" and chosen != protocol.V1_SUBPROTOCOL:
            ws.close()
            raise ConnectionLost(f"{self._rest.url} does not speak the v1 kernel websocket protocol; use 'auto'.")
        self._v1 = chosen == protocol.V1_SUBPROTOCOL
        ws.settimeout(None)  # TCP keepalive (on by default) notices a dead peer
        return ws

    def _sslopt(self) -> dict[str, Any]:
        import ssl

        verify = self._rest.verify
        if verify is False:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        if isinstance(verify, str):
            return {"ca_certs": verify}
        return {}

    def _handshake_error(self, status: int) -> Exception:
        if status in (401, 403):
            return AuthenticationError(
                f"{self._rest.url} refused the kernel websocket (HTTP {status}); check the token."
            )
        if status == 404:
            return NotFound(f"Kernel {self.kernel_id} does not exist on {self._rest.url}; list kernels to pick one.")
        return ConnectionLost(f"{self._rest.url} refused the kernel websocket (HTTP {status}).")

    def _reconnect(self) -> websocket.WebSocket | Exception:
        """Re-open with the same session id; give up after a few tries or at once on 403/404."""
        delay = 0.25
        error: Exception = ConnectionLost(f"Lost the websocket of kernel {self.kernel_id}.")
        for _ in range(self.max_retries):
            if self._closed:
                break
            try:
                ws = self._connect()
            except (AuthenticationError, NotFound) as exc:
                return exc
            except ConnectionLost as exc:
                error = exc
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
                continue
            self.reconnects += 1
            log.info("Reconnected to kernel %s", self.kernel_id)
            return ws
        return ConnectionLost(f"{error} Gave up after {self.max_retries} tries.")

    # ------------------------------------------------------------------ reading

    def _read_loop(self) -> None:
        while not self._closed:
            ws = self._ws
            try:
                if _QUICKACK is not None and ws.sock is not None:
                    ws.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                opcode, data = ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    raise websocket.WebSocketConnectionClosedException("closed by the server")
            except (OSError, AttributeError, websocket.WebSocketException):
                if self._closed:
                    return
                self._connected.clear()
                result = self._reconnect()
                if isinstance(result, Exception):
                    self._fail(result)
                    return
                self._ws = result
                self._connected.set()
                continue
            self._accept(self._decode(opcode, data))

    def _decode(self, opcode: int, data: bytes) -> Message:
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return protocol.decode_legacy(data.decode("utf-8"))
        return protocol.decode_v1(data) if self._v1 else protocol.decode_legacy(data)

    def _accept(self, msg: Message) -> None:
        parent = msg["parent_header"]
        if parent.get("session") == self.session_id:
            self._inbox.put(msg)
        elif not parent and _is_kernel_gone(msg):
            if msg["content"]["execution_state"] == "restarting":
                self._restarted = True
            self._inbox.put(msg)

    # ------------------------------------------------------------------ requests

    def send(self, msg: Message) -> None:
        """Send one message, waiting for a reconnect in progress if need be."""
        payload = protocol.encode_v1(msg) if self._v1 else protocol.encode_legacy(msg)
        opcode = websocket.ABNF.OPCODE_TEXT if isinstance(payload, str) else websocket.ABNF.OPCODE_BINARY
        for attempt in range(2):
            if not self._wait_connected() or self._closed:
                break
            ws = self._ws
            try:
                with self._send_lock:
                    ws.send(payload, opcode)
                return
            except (OSError, websocket.WebSocketException):
                if self._ws is ws:  # else the reader already has a new socket up
                    self._connected.clear()
                time.sleep(0.05 * (attempt + 1))
        if self._closed:
            raise self._closed_error()
        raise ConnectionLost(f"Could not send to kernel {self.kernel_id}: the websocket is down.")

    def _wait_connected(self) -> bool:
        """Wait for a reconnect in progress; False if it fails or takes longer than connect_timeout."""
        deadline = time.monotonic() + self.connect_timeout
        while not self._connected.wait(0.05):
            if self._closed or time.monotonic() >= deadline:
                return False
        return True

    def new_message(self, msg_type: str, content: dict[str, Any], *, channel: str = "shell", parent: Message | None = None) -> Message:
        return protocol.new_message(msg_type, content, session=self.session_id, channel=channel, parent=parent)

    def request(
        self,
        msg_type: str,
        content: dict[str, Any],
        *,
        timeout: float | None = 30.0,
        wait_idle: bool = False,
        channel: str = "shell",
    ) -> Message:
        """Send a request on ``channel`` (shell or control) and return its reply (iopub traffic of
        it is discarded). With ``wait_idle``, also wait for the request's ``idle`` status on iopub."""
        reply: Message | None = None
        request = self.new_message(msg_type, content, channel=channel)
        for msg in self._exchange(request, timeout, wait_idle=wait_idle):
            if msg["channel"] == channel:
                reply = msg
        assert reply is not None
        return reply

    def wait_ready(self, timeout: float = 60.0) -> Message:
        """Send ``kernel_info`` requests until one's reply *and* its iopub ``idle`` arrive, i.e.
        until output flows again; return the reply. After a restart the server's iopub
        subscription to the new kernel process takes a moment, and output sent before it is lost."""
        self.open()
        deadline = time.monotonic() + timeout
        attempt = 0.5
        while True:
            remaining = deadline - time.monotonic()
            try:
                reply = self.request("kernel_info_request", {}, timeout=min(attempt, max(remaining, 0.01)), wait_idle=True)
            except ExecutionTimeout:
                if time.monotonic() >= deadline:
                    raise ExecutionTimeout(
                        f"Kernel {self.kernel_id} did not answer within {timeout:g}s; it may be stuck starting."
                    ) from None
                attempt = min(attempt * 2, 5.0)
                continue
            self.kernel_info = reply
            return reply

    def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = False,
        user_expressions: dict[str, str] | None = None,
        stop_on_error: bool = True,
        timeout: float | None = None,
        on_keyboard_interrupt: Callable[[], None] | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> Iterator[Message]:
        """Run ``code``; yield every message of that request: iopub, stdin ``input_request``s,
        and last the ``execute_reply``.

        Ends after the reply and the matching ``idle`` status. Raises :class:`KernelDied` on the
        server's ``dead``/``restarting`` status, :class:`ExecutionTimeout` past ``timeout`` seconds,
        :class:`ConnectionLost` if the websocket cannot be re-established. A local Ctrl-C calls
        ``on_keyboard_interrupt`` (e.g. interrupt the kernel) and keeps draining the outputs;
        likewise ``on_timeout`` at the deadline, after which the drained request still raises
        :class:`ExecutionTimeout`.
        """
        self.open()
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": user_expressions or {},
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        }
        request = self.new_message("execute_request", content)
        yield from self._exchange(
            request, timeout, wait_idle=True, on_keyboard_interrupt=on_keyboard_interrupt, on_timeout=on_timeout
        )

    def send_input(self, value: str, input_request: Message) -> None:
        """Answer a stdin ``input_request`` yielded by :meth:`execute`."""
        self.send(self.new_message("input_reply", {"value": value}, channel="stdin", parent=input_request))

    def _exchange(
        self,
        request: Message,
        timeout: float | None,
        *,
        wait_idle: bool,
        on_keyboard_interrupt: Callable[[], None] | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> Iterator[Message]:
        with self._lock:
            if self._reader is None:
                self.open()
            yield from self._between_requests()
            if self._restarted:
                # The server restarted the kernel after it died; its iopub subscription to the new
                # process takes a moment, and output sent before it is lost.
                self._restarted = False
                self.wait_ready(timeout=60)
            msg_id = request["msg_id"]
            self._recent_requests.append(msg_id)
            self.send(request)
            deadline = None if timeout is None else time.monotonic() + timeout
            got_reply = False
            got_idle = not wait_idle
            process = None  # the kernel process running the request, from its messages' headers
            # Each hook fires once; then the request gets a grace period to finish and drain.
            hooks = {KeyboardInterrupt: on_keyboard_interrupt, ExecutionTimeout: on_timeout}
            fired: set[type] = set()
            while not (got_reply and got_idle):
                try:
                    item = self._next(deadline, msg_id)
                except (KeyboardInterrupt, ExecutionTimeout) as exc:
                    kind = KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else ExecutionTimeout
                    if kind in fired or hooks[kind] is None:
                        raise
                    fired.add(kind)
                    hooks[kind]()
                    deadline = _grace_deadline(deadline)
                    continue
                parent_id = protocol.parent_msg_id(item)
                if parent_id == msg_id:
                    process = process or item["header"].get("session")
                    if item["channel"] == request["channel"]:
                        got_reply = True
                    elif item["msg_type"] == "status" and item["content"].get("execution_state") == "idle":
                        got_idle = True
                    yield item
                elif _is_kernel_gone(item) and not item["parent_header"]:
                    state = item["content"]["execution_state"]
                    self._recent_requests.remove(msg_id)  # nothing more will come of it
                    raise KernelDied(
                        f"Kernel {self.kernel_id} died during the request "
                        f"({'the server restarted it, state is lost' if state == 'restarting' else 'it is dead'}); "
                        "outputs until then were shown."
                    )
                elif parent_id in self._probes and item["channel"] == "control":
                    if process is not None and item["header"].get("session") not in (None, process):
                        self._recent_requests.remove(msg_id)
                        self._restarted = True
                        raise KernelDied(
                            f"Kernel {self.kernel_id} was restarted during the request (by another client?); "
                            "its state is lost; outputs until then were shown."
                        )
                elif self._is_late_output(item):
                    yield item
            if ExecutionTimeout in fired:
                raise ExecutionTimeout(
                    f"The request ran past its {timeout:g}s timeout and kernel {self.kernel_id} was "
                    "interrupted; its outputs were shown."
                )

    def _between_requests(self) -> list[Message]:
        """Take what arrived since the last request: late outputs of earlier requests (returned),
        and the server's ``restarting``/``dead`` status of a kernel that died while idle, which
        must not be taken for the death of the request about to be sent."""
        late = []
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Dropped):
                self._inbox.put(item)  # the next wait raises it
                break
            if _is_kernel_gone(item) and not item["parent_header"]:
                log.warning(
                    "Kernel %s died while idle and was %s; its state is lost.",
                    self.kernel_id,
                    "restarted by the server" if item["content"]["execution_state"] == "restarting" else "not restarted",
                )
            elif self._is_late_output(item):
                late.append(item)
        return late

    def _next(self, deadline: float | None, msg_id: str) -> Message:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ExecutionTimeout(f"Kernel {self.kernel_id} did not finish request {msg_id[:8]} in time.")
            wait = _LIVENESS_INTERVAL if remaining is None else min(remaining, _LIVENESS_INTERVAL)
            try:
                item = self._inbox.get(timeout=wait)
                break
            except queue.Empty:
                if remaining is not None and wait >= remaining:
                    raise ExecutionTimeout(
                        f"Kernel {self.kernel_id} did not finish in time; it may still be running "
                        "(interrupt it, or raise the timeout)."
                    ) from None
                self._check_kernel_exists()
                self._probe_process()
        if isinstance(item, _Dropped):
            self._inbox.put(item)  # stays dropped for later callers
            raise self._closed_error() from None
        return item

    def _check_kernel_exists(self) -> None:
        """Raise NotFound (and close) if the server no longer has the kernel; the server leaves
        the websocket of a kernel shut down elsewhere open and silent."""
        try:
            self._rest.request("GET", "kernels", self.kernel_id, timeout=10)
        except NotFound:
            self._fail(
                NotFound(
                    f"Kernel {self.kernel_id} no longer exists on {self._rest.url} (shut down, culled or died); "
                    "start or attach another."
                )
            )
            ws = self._ws
            if ws is not None:
                ws.abort()
            raise self._closed_error() from None
        except RemoteMagicError:
            pass  # cannot tell from here; the websocket reader notices a server that is gone

    def _probe_process(self) -> None:
        """Ask on control which kernel process answers; :meth:`_exchange` compares the reply's
        sender with the process running the request."""
        if not self._connected.is_set():
            return  # the reader is reconnecting; the next silence asks again
        probe = self.new_message("kernel_info_request", {}, channel="control")
        self._probes.append(probe["msg_id"])
        try:
            self.send(probe)
        except ConnectionLost:
            pass  # the reader notices and reports a connection that is gone

    def _is_late_output(self, msg: Message) -> bool:
        return msg["msg_type"] in protocol.OUTPUT_TYPES and protocol.parent_msg_id(msg) in self._recent_requests


def _grace_deadline(deadline: float | None) -> float:
    """The deadline after an interrupt: a short grace period, never later than a pending deadline."""
    grace = time.monotonic() + _INTERRUPT_GRACE
    if deadline is None or deadline <= time.monotonic():
        return grace
    return min(deadline, grace)


def _is_kernel_gone(msg: Message) -> bool:
    return msg["msg_type"] == "status" and msg["content"].get("execution_state") in ("dead", "restarting")
