"""Requests to one remote kernel over its :class:`.KernelLink`: execute with live messages,
other shell/control requests, stdin answers, comms, and what a request sees when the kernel goes away.
Any number of requests may be in flight; each gets the messages that name it as parent."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import protocol
from .comm_routing import CommCallback, CommRoutes
from .errors import (
    ConnectionLost,
    ExecutionTimeout,
    KernelDied,
    NotFound,
    RemoteMagicError,
)
from .exchange import Exchange
from .link import CLIENT_SESSION_ID, KernelLink
from .protocol import Message
from .router import Answer, Pending

log = logging.getLogger("remote_magic")

__all__ = ["CLIENT_SESSION_ID", "KernelChannel"]


class KernelChannel(KernelLink):
    """The websocket of one kernel and the requests over it. Use :meth:`execute`; it opens the
    connection on first use."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._info_lock = threading.Lock()
        self._info_asked: Answer | None = None  # the first kernel_info request, until answered
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Connect if not connected. The first time, ask the kernel for its ``kernel_info`` on the
        control channel without waiting: the first request goes out at once, and
        :attr:`kernel_info` collects the answer when someone needs it."""
        if super().open():
            asked = Answer(self.new_message("kernel_info_request", {}, channel="control"), self._router)
            with self._info_lock:
                self._info_asked = self._router.open(asked)
            self.send(asked.request)

    @property
    def kernel_info(self) -> Message | None:
        """The kernel's ``kernel_info_reply`` (None before the first connection). A kernel busy
        with a long cell answers on control at once; one that does not answer there within 5 s
        is asked on shell."""
        with self._info_lock:
            asked, self._info_asked = self._info_asked, None
            if asked is not None:
                if not asked.answered.wait(min(5.0, self.connect_timeout)):
                    self._router.end(asked)  # an answer ends its own routing
                self._kernel_info = asked.reply or self.request("kernel_info_request", {}, timeout=self.connect_timeout)
            return self._kernel_info

    @kernel_info.setter
    def kernel_info(self, reply: Message | None) -> None:
        self._kernel_info = reply

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
            if msg["channel"] == channel and not msg.get("late"):
                reply = msg
        assert reply is not None
        return reply

    def wait_ready(self, timeout: float = 60.0) -> Message:
        """Send ``kernel_info`` requests until one's reply *and* its iopub ``idle`` arrive, i.e.
        until output flows again; return the reply. After a restart the server's iopub
        subscription to the new kernel process takes a moment, and output sent before it is lost."""
        self.open()
        self._restarted = False
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
        and last the ``execute_reply``. Late output of earlier requests comes first, each marked
        ``msg["late"] = True``; a notice of something lost is a stderr stream of this request.

        Ends after the reply and the matching ``idle`` status. Raises :class:`KernelDied` when the
        kernel dies or is restarted (also by another client), :class:`NotFound` when someone shuts
        it down, :class:`ExecutionTimeout` past ``timeout`` seconds, :class:`ConnectionLost` if the
        link stays down, :class:`RequestDropped` if the kernel ended it without a reply (an
        interrupt outside the code does that). A local Ctrl-C calls ``on_keyboard_interrupt``
        (e.g. interrupt the kernel) and keeps draining the outputs; likewise ``on_timeout`` at the
        deadline, after which the drained request still raises :class:`ExecutionTimeout`.
        """
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

    # ------------------------------------------------------------------ comms

    @property
    def comms(self) -> CommRoutes:
        """Where the kernel's comm messages go: register consumers by comm id or target name."""
        return self._router.comms

    def open_comm(
        self,
        target_name: str,
        data: dict[str, Any] | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes | memoryview] = (),
        comm_id: str | None = None,
        on_msg: CommCallback | None = None,
    ) -> str:
        """Open a comm with the kernel's ``target_name``; return its id. ``on_msg`` (registered
        before the ``comm_open`` goes out, so nothing is missed) receives the kernel's messages on it."""
        comm_id = comm_id or uuid.uuid4().hex
        if on_msg is not None:
            self.comms.register(comm_id, on_msg)
        content = {"comm_id": comm_id, "target_name": target_name, "data": data or {}}
        try:
            self._send_comm("comm_open", content, metadata, buffers)
        except Exception:
            self.comms.unregister(comm_id)
            raise
        return comm_id

    def send_comm(
        self,
        comm_id: str,
        data: dict[str, Any] | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes | memoryview] = (),
    ) -> None:
        """Send a ``comm_msg`` (with binary ``buffers``, sent as websocket buffers) on comm ``comm_id``."""
        self._send_comm("comm_msg", {"comm_id": comm_id, "data": data or {}}, metadata, buffers)

    def close_comm(self, comm_id: str, data: dict[str, Any] | None = None) -> None:
        """Close comm ``comm_id`` on the kernel and stop routing its messages."""
        self.comms.unregister(comm_id)
        self._send_comm("comm_close", {"comm_id": comm_id, "data": data or {}}, None, ())

    def _send_comm(
        self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None, buffers: Sequence[bytes | memoryview]
    ) -> None:
        self.open()
        msg = self.new_message(msg_type, content)
        msg["metadata"] = metadata or {}
        msg["buffers"] = list(buffers)
        self.send(msg)

    def _exchange(self, request: Message, timeout: float | None, *, wait_idle: bool, **hooks: Any) -> Iterator[Message]:
        pending = self._router.open(request)
        try:
            self.open()
            yield from self._router.take_late()
            self._after_idle_events()
            if self._restarted and request["msg_type"] == "execute_request":
                self.wait_ready(timeout=60)
            yield from Exchange(self, pending, timeout, wait_idle=wait_idle, **hooks).run()
        finally:
            self._router.end(pending)

    def _after_idle_events(self) -> None:
        """The kernel went away while no request was pending: a server ``restarting``/``dead``
        status is worth a warning; any restart means output must flow before the next request."""
        for event in self._router.take_idle_events():
            state = event.detail.get("state")
            if state in ("restarting", "dead") and event.detail.get("from_server"):
                log.warning(
                    "Kernel %s died while idle and was %s; its state is lost.",
                    self.kernel_id,
                    "restarted by the server" if state == "restarting" else "not restarted",
                )
            if state == "restarting":
                self._restarted = True

    # ------------------------------------------------------------------ used by Exchange

    def attach_probe(self, pending: Pending, channel: str = "control") -> bool:
        """Ask on ``channel`` which kernel process answers; the reply reaches ``pending``. On shell
        the answer also comes after the reply of every shell request sent before it. False if
        the probe could not be sent."""
        if not self._connected.is_set():
            return False  # the reader thread is reconnecting; the next silence asks again
        probe = self.new_message("kernel_info_request", {}, channel=channel)
        self._router.attach(pending, probe["msg_id"])
        try:
            self._socket.send(probe)
        except ConnectionLost:
            return False  # the next read notices and reports a connection that is gone
        return True

    def kernel_model(self) -> dict[str, Any] | None:
        """The server's model of the kernel, None if it cannot tell; raises NotFound (and closes)
        if the server no longer has the kernel. Asked only while the link is up, and briefly, so
        that a request never waits on it longer than on the link itself."""
        if not self.is_open:
            return None  # the link is down: the reader thread reports it
        try:
            return self._rest.request("GET", "kernels", self.kernel_id, timeout=max(1.0, self.ping_timeout / 4))
        except NotFound:
            self.kernel_gone("shutdown")
        except RemoteMagicError:
            return None  # cannot tell from here; the websocket reader notices a server that is gone

    def kernel_gone(self, state: str) -> None:
        """Raise what a request sees when the kernel went away (``shutdown``, ``restarting`` or ``dead``)."""
        if state == "shutdown":
            self._fail(
                NotFound(
                    f"Kernel {self.kernel_id} no longer exists on {self._rest.url} (shut down by another client, "
                    "culled or died); start or attach another, then re-run the cells that set up state."
                )
            )
            raise self._closed_error() from None
        if state == "restarting":
            self._restarted = True
            raise KernelDied(
                f"Kernel {self.kernel_id} was restarted during the request; its state is lost (outputs until "
                "then were shown): re-run the cells that set up state."
            )
        raise KernelDied(
            f"Kernel {self.kernel_id} died during the request and the server did not restart it (outputs until "
            "then were shown); start or attach another kernel (%remote start, %remote attach) and re-run the "
            "cells that set up state."
        )

    def link_error(self) -> Exception:
        return self._closed_error() if self._closed else ConnectionLost(f"The link to kernel {self.kernel_id} is down.")
