"""A cell's outputs as nbformat dicts, kept the way a notebook frontend keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import protocol
from .errors import RemoteExecutionError
from .protocol import Message

Output = dict[str, Any]


class OutputList:
    """Applies iopub messages in order: streams merge, ``clear_output`` (also ``wait=True``) and
    ``update_display_data`` act on earlier outputs. Late output of earlier requests is left out."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self._clear_on_next = False
        self._by_display_id: dict[str, list[int]] = {}

    def add(self, msg: Message) -> None:
        if msg.get("late"):
            return  # output of an earlier request, not of this one
        msg_type = msg["msg_type"]
        if msg_type == "clear_output":
            if msg["content"].get("wait"):
                self._clear_on_next = True
            else:
                self._clear()
            return
        if msg_type == "update_display_data":
            self._update(msg)
            return
        output = protocol.output_from_message(msg)
        if output is None:
            return
        if self._clear_on_next:
            self._clear()
        last = self.outputs[-1] if self.outputs else None
        if output["output_type"] == "stream" and last and last.get("name") == output["name"] and last["output_type"] == "stream":
            last["text"] += output["text"]
            return
        target = protocol.display_id(msg)
        if target:
            self._by_display_id.setdefault(target, []).append(len(self.outputs))
        self.outputs.append(output)

    def _clear(self) -> None:
        self.outputs.clear()
        self._by_display_id.clear()
        self._clear_on_next = False

    def _update(self, msg: Message) -> None:
        for index in self._by_display_id.get(protocol.display_id(msg) or "", []):
            self.outputs[index]["data"] = msg["content"].get("data", {})
            self.outputs[index]["metadata"] = msg["content"].get("metadata", {})


@dataclass
class ExecutionResult:
    """What one execution produced: its outputs (nbformat dicts) and its ``execute_reply``."""

    outputs: list[Output] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.reply.get("status", "")

    @property
    def execution_count(self) -> int | None:
        return self.reply.get("execution_count")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def text(self, name: str = "stdout") -> str:
        """All text the remote wrote to ``stdout`` (or ``stderr``)."""
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == name)

    @property
    def result(self) -> Output | None:
        """The ``execute_result`` data, if the cell had one."""
        return next((o["data"] for o in self.outputs if o["output_type"] == "execute_result"), None)

    def error(self) -> RemoteExecutionError | None:
        """The remote error as an exception (not raised), or None."""
        if self.status != "error":
            return None
        return RemoteExecutionError(
            self.reply.get("ename", "Error"), self.reply.get("evalue", ""), self.reply.get("traceback")
        )

    def raise_for_error(self) -> ExecutionResult:
        """Raise :class:`RemoteExecutionError` if the remote code raised; else return self."""
        error = self.error()
        if error is not None:
            raise error
        return self
