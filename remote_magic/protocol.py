"""Jupyter messages and their websocket encodings. Pure functions: no sockets, stdlib only.

A message is the dict jupyter_client uses: ``header``, ``parent_header``, ``metadata``,
``content``, ``buffers``, ``channel``, plus ``msg_id`` and ``msg_type`` copied from the header.
"""

from __future__ import annotations

import json
import struct
import uuid
from datetime import datetime, timezone
from typing import Any

PROTOCOL_VERSION = "5.3"
V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"

Message = dict[str, Any]

# iopub message types that carry output for a cell
OUTPUT_TYPES = frozenset(
    {"stream", "display_data", "execute_result", "error", "update_display_data", "clear_output"}
)


def new_session_id() -> str:
    """A fresh client session id (one per process is enough)."""
    return uuid.uuid4().hex


def new_message(
    msg_type: str,
    content: dict[str, Any],
    *,
    session: str,
    channel: str = "shell",
    parent: Message | None = None,
    metadata: dict[str, Any] | None = None,
    username: str = "remote_magic",
) -> Message:
    """Build a complete message ready to encode."""
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "username": username,
        "date": datetime.now(timezone.utc).isoformat(),
        "version": PROTOCOL_VERSION,
    }
    return {
        "header": header,
        "msg_id": header["msg_id"],
        "msg_type": msg_type,
        "parent_header": dict(parent["header"]) if parent else {},
        "metadata": metadata or {},
        "content": content,
        "buffers": [],
        "channel": channel,
    }


def _complete(msg: Message, channel: str | None) -> Message:
    header = msg.get("header") or {}
    msg["header"] = header
    msg.setdefault("parent_header", {})
    msg["parent_header"] = msg["parent_header"] or {}
    msg.setdefault("metadata", {})
    msg.setdefault("content", {})
    msg.setdefault("buffers", [])
    msg["msg_id"] = header.get("msg_id", "")
    msg["msg_type"] = header.get("msg_type", "")
    if channel is not None:
        msg["channel"] = channel
    return msg


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


# ---------------------------------------------------------------- legacy protocol (JSON frames)


def encode_legacy(msg: Message) -> str | bytes:
    """Encode for the legacy protocol: a JSON text frame, or a binary frame when there are buffers."""
    body = {k: msg[k] for k in ("header", "parent_header", "metadata", "content", "channel")}
    buffers = [bytes(b) for b in msg.get("buffers") or []]
    if not buffers:
        return _dumps(body)
    parts = [_dumps(body).encode("utf-8"), *buffers]
    offsets = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets) + b"".join(parts)


def decode_legacy(frame: str | bytes) -> Message:
    """Decode a legacy frame (JSON text, or big-endian offset table + JSON + buffers)."""
    if isinstance(frame, str):
        return _complete(json.loads(frame), None)
    frame = bytes(frame)
    (count,) = struct.unpack_from("!I", frame, 0)
    offsets = list(struct.unpack_from(f"!{count}I", frame, 4)) + [len(frame)]
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(count)]
    msg = json.loads(parts[0])
    msg["buffers"] = parts[1:]
    return _complete(msg, None)


# ---------------------------------------------------------------- v1.kernel.websocket.jupyter.org


def encode_v1(msg: Message) -> bytes:
    """Encode for the v1 protocol: little-endian uint64 offsets, channel, four JSON parts, buffers."""
    parts = [
        _dumps(msg[k]).encode("utf-8") for k in ("header", "parent_header", "metadata", "content")
    ]
    parts += [bytes(b) for b in msg.get("buffers") or []]
    channel = msg["channel"].encode("utf-8")
    offsets = [8 * (len(parts) + 3)]
    offsets.append(offsets[-1] + len(channel))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    table = struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets)
    return table + channel + b"".join(parts)


def decode_v1(frame: bytes) -> Message:
    """Decode a v1 binary frame."""
    frame = bytes(frame)
    (count,) = struct.unpack_from("<Q", frame, 0)
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    channel = frame[offsets[0] : offsets[1]].decode("utf-8")
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
    header, parent, metadata, content = (json.loads(p) if p else {} for p in parts[:4])
    msg = {
        "header": header,
        "parent_header": parent,
        "metadata": metadata,
        "content": content,
        "buffers": parts[4:],
    }
    return _complete(msg, channel)


# ---------------------------------------------------------------- outputs as nbformat dicts


def output_from_message(msg: Message) -> dict[str, Any] | None:
    """The nbformat v4 output for an iopub message, or None when it is not an output."""
    msg_type, content = msg["msg_type"], msg["content"]
    if msg_type == "stream":
        return {"output_type": "stream", "name": content["name"], "text": content["text"]}
    if msg_type in ("display_data", "execute_result"):
        out = {
            "output_type": msg_type,
            "data": content.get("data", {}),
            "metadata": content.get("metadata", {}),
        }
        if msg_type == "execute_result":
            out["execution_count"] = content.get("execution_count")
        return out
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": content.get("ename", ""),
            "evalue": content.get("evalue", ""),
            "traceback": content.get("traceback", []),
        }
    return None


def parent_msg_id(msg: Message) -> str | None:
    """The msg_id of the request a message answers, if any."""
    return (msg.get("parent_header") or {}).get("msg_id")


def display_id(msg: Message) -> str | None:
    """The display_id a display_data / update_display_data message targets, if any."""
    return (msg["content"].get("transient") or {}).get("display_id")
