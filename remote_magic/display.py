"""Show a remote execution's iopub messages in the local frontend, live and as the remote made them."""

from __future__ import annotations

import sys
from typing import Any

from IPython.display import clear_output, publish_display_data

from .errors import RemoteExecutionError
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


def remote_exception(content: dict[str, Any]) -> RemoteExecutionError:
    """An exception named like the remote one (so the cell fails with, e.g., ``ZeroDivisionError``)
    whose rendered traceback is the remote traceback."""
    ename = str(content.get("ename") or "RemoteError")
    cls_name = ename if ename.isidentifier() else "RemoteError"
    # Its str() is the remote evalue alone: frontends put the class name in front of it.
    cls = type(cls_name, (RemoteExecutionError,), {"__module__": "remote", "__str__": lambda self: self.evalue})
    return cls(ename, str(content.get("evalue", "")), content.get("traceback"))


class LiveDisplay:
    """Call it with each message of one execution; it writes streams, publishes displays,
    applies updates and clears, and keeps the result and error for the end of the cell."""

    def __init__(self) -> None:
        self.result: RemoteResult | None = None
        self.error: dict[str, Any] | None = None
        self._last_stream = sys.stdout

    def __call__(self, msg: Message) -> None:
        handler = getattr(self, "_on_" + msg["msg_type"], None)
        if handler is not None:
            handler(msg["content"])

    def _on_stream(self, content: dict[str, Any]) -> None:
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        if stream is not self._last_stream:
            self._last_stream.flush()  # keep stdout/stderr interleaved as the remote wrote them
            self._last_stream = stream
        stream.write(content.get("text", ""))

    def _publish(self, content: dict[str, Any], *, update: bool = False) -> None:
        transient = content.get("transient") or None
        options: dict[str, Any] = {"transient": transient} if transient else {}
        if update:
            options["update"] = True
        publish_display_data(content.get("data", {}), content.get("metadata") or {}, **options)

    def _on_display_data(self, content: dict[str, Any]) -> None:
        self._publish(content)

    def _on_update_display_data(self, content: dict[str, Any]) -> None:
        self._publish(content, update=True)

    def _on_clear_output(self, content: dict[str, Any]) -> None:
        self.flush()
        clear_output(wait=bool(content.get("wait")))

    def _on_execute_result(self, content: dict[str, Any]) -> None:
        self.result = RemoteResult(content.get("data", {}), content.get("metadata") or {})

    def _on_error(self, content: dict[str, Any]) -> None:
        self.error = content

    def flush(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()

    def show_error(self) -> None:
        """Write the remote traceback (for when remote errors do not fail the local cell)."""
        if self.error is not None:
            self.flush()
            print("\n".join(self.error.get("traceback") or [f"{self.error.get('ename')}: {self.error.get('evalue')}"]), file=sys.stderr)
