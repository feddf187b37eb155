"""Show a remote execution's iopub messages in the local frontend, live and as the remote made them."""

from __future__ import annotations

import sys
from typing import Any

from IPython.display import clear_output, publish_display_data

from . import sanitize
from .errors import RemoteExecutionError, remote_header
from .frontend import is_terminal
from .protocol import Message


class RemoteResult:
    """The remote ``execute_result``: shown as this cell's result with the same MIME data."""

    def __init__(self, data: dict[str, Any], metadata: dict[str, Any]):
        self.data = data
        self.metadata = metadata

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict, dict]:
        return self.data, self.metadata

    def __repr__(self) -> str:
        return str(self.data.get("text/plain", ""))


def remote_exception(content: dict[str, Any], origin: str | None = None) -> RemoteExecutionError:
    """An exception named like the remote one (so the cell fails with, e.g., ``ZeroDivisionError``)
    whose rendered traceback is the remote traceback, under a header naming ``origin``."""
    ename = str(content.get("ename") or "RemoteError")
    cls_name = ename if ename.isidentifier() else "RemoteError"
    # Its str() is the remote evalue alone: frontends put the class name in front of it.
    cls = type(cls_name, (RemoteExecutionError,), {"__module__": "remote", "__str__": lambda self: self.evalue})
    return cls(ename, str(content.get("evalue", "")), content.get("traceback"), origin)


def kernel_origin(kernel_id: str, connection: str = "") -> str:
    """How a remote traceback's header names where it ran: ``kernel 3f2a9c1d of connection 'gpu'``."""
    return f"kernel {kernel_id[:8]} of connection {connection!r}" if connection else f"kernel {kernel_id[:8]}"


class LiveDisplay:
    """Call it with each message of one execution; it writes streams, publishes displays,
    applies updates and clears, and keeps the result and error for the end of the cell.

    With ``safe_outputs``, only the inert part of each output is shown (see
    :mod:`remote_magic.sanitize`) and :meth:`finish` says in one line what was held back.
    """

    def __init__(self, *, safe_outputs: bool = False, origin: str | None = None) -> None:
        self.origin = origin  # named above a remote traceback
        self.result: RemoteResult | None = None
        self.error: dict[str, Any] | None = None
        self.held_back: sanitize.HeldBack | None = sanitize.HeldBack() if safe_outputs else None
        self._last_stream = sys.stdout
        self._late_header_shown = False

    def __call__(self, msg: Message) -> None:
        if msg.get("late"):
            self._on_late(msg)
            return
        handler = getattr(self, "_on_" + msg["msg_type"], None)
        if handler is not None:
            handler(msg["content"])

    def _on_late(self, msg: Message) -> None:
        """Output of an earlier cell that arrived after it ended: shown under a one-line header,
        never as this cell's result or error, and never clearing this cell."""
        msg_type, content = msg["msg_type"], msg["content"]
        if not self._late_header_shown:
            self._late_header_shown = True
            self._on_stream({"name": "stderr", "text": "remote_magic: output of an earlier cell, arrived after it ended:\n"})
        if msg_type == "stream":
            self._on_stream(content)
        elif msg_type in ("display_data", "execute_result"):
            self._publish(content)
        elif msg_type == "update_display_data":
            self._publish(content, update=True)
        elif msg_type == "error":
            self._on_stream({"name": "stderr", "text": _traceback_text(content) + "\n"})

    def _on_stream(self, content: dict[str, Any]) -> None:
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        if stream is not self._last_stream:
            self._last_stream.flush()  # keep stdout/stderr interleaved as the remote wrote them
            self._last_stream = stream
        stream.write(content.get("text", ""))

    def _data(self, content: dict[str, Any]) -> dict[str, Any]:
        data = content.get("data", {})
        return data if self.held_back is None else sanitize.safe_bundle(data, self.held_back)

    def _publish(self, content: dict[str, Any], *, update: bool = False) -> None:
        data = self._data(content)
        if not data:
            return  # everything was held back
        transient = content.get("transient") or None
        options: dict[str, Any] = {"transient": transient} if transient else {}
        if update:
            options["update"] = True
        publish_display_data(data, content.get("metadata") or {}, **options)

    def _on_display_data(self, content: dict[str, Any]) -> None:
        self._publish(content)

    def _on_update_display_data(self, content: dict[str, Any]) -> None:
        self._publish(content, update=True)

    def _on_clear_output(self, content: dict[str, Any]) -> None:
        self.flush()
        clear_output(wait=bool(content.get("wait")))

    def _on_execute_result(self, content: dict[str, Any]) -> None:
        self.result = RemoteResult(self._data(content), content.get("metadata") or {})

    def _on_error(self, content: dict[str, Any]) -> None:
        self.error = content

    def flush(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()

    def finish(self) -> None:
        """End of the cell: flush, and with safe outputs say what was held back (one line)."""
        self.flush()
        held = sanitize.notice(self.held_back) if self.held_back else None
        if held:
            print(held, file=sys.stderr, flush=True)

    def show_error(self) -> None:
        """Write the remote traceback (for when remote errors do not fail the local cell)."""
        if self.error is not None:
            self.flush()
            header = [remote_header(self.origin)] if self.origin else []
            print("\n".join(header + [_traceback_text(self.error)]), file=sys.stderr)

    def interrupted(self) -> None:
        """After a local Ctrl-C: on a terminal, what follows starts on a new line (not after ``^C``)."""
        if is_terminal(sys.stdout):
            sys.stdout.write("\n")
            sys.stdout.flush()


def _traceback_text(content: dict[str, Any]) -> str:
    return "\n".join(content.get("traceback") or [f"{content.get('ename')}: {content.get('evalue')}"])
