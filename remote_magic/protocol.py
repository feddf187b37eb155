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

from . import jsonbytes
from .errors import ProtocolError

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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


# ---------------------------------------------------------------- legacy protocol (JSON frames)


def encode_legacy(msg: Message) -> str | bytes:
    """Encode for the legacy protocol: a JSON text frame, or a binary frame when there are buffers."""
    body = {k: msg[k] for k in ("header", "parent_header", "metadata", "content", "channel")}
    buffers = [_byte_view(b) for b in msg.get("buffers") or []]
    if not buffers:
        return _dumps(body)
    parts = [_dumps(body).encode("utf-8"), *buffers]
    offsets = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets) + b"".join(parts)


def _byte_view(buffer: Any) -> memoryview:
    """A flat byte view of a buffer (bytes, memoryview, a contiguous array): joined without a copy first."""
    view = memoryview(buffer)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


# ---------------------------------------------------------------- v1.kernel.websocket.jupyter.org


def encode_v1(msg: Message) -> bytes:
    """Encode for the v1 protocol: little-endian uint64 offsets, channel, four JSON parts, buffers."""
    parts = [
        _dumps(msg[k]).encode("utf-8") for k in ("header", "parent_header", "metadata", "content")
    ]
    parts += [_byte_view(b) for b in msg.get("buffers") or []]
    channel = msg["channel"].encode("utf-8")
    offsets = [8 * (len(parts) + 3)]
    offsets.append(offsets[-1] + len(channel))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    table = struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets)
    return table + channel + b"".join(parts)


# ---------------------------------------------------------------- decoding, validated
#
# Decoders trust nothing they receive: a malformed frame raises ProtocolError with a one-line
# reason, never another exception, and nothing is allocated in proportion to a claimed count
# before the count is checked against the frame's length. Buffers are read-only memoryview slices
# of the frame, and JSON parts are parsed in place (see :mod:`.jsonbytes`), not copied.

CHANNELS = frozenset({"shell", "iopub", "stdin", "control"})
_V1_CHANNELS = {name.encode("ascii"): name for name in CHANNELS}
_JSON_PARTS = ("header", "parent_header", "metadata", "content")
_loads = json.JSONDecoder().decode  # json.loads without its per-call type checks


def decode_frame(data: str | bytes | bytearray, *, text: bool, v1: bool) -> Message:
    """Decode one websocket message as received: a text message is legacy JSON (str or UTF-8
    bytes), a binary one is v1 or legacy as the handshake selected. Raises :class:`ProtocolError`."""
    if not text:
        return decode_v1(data) if v1 else decode_legacy(data)
    if isinstance(data, str):
        return decode_legacy(data)
    return _legacy_message(_json(data, "a text frame"), [])


def decode_legacy(frame: str | bytes | bytearray) -> Message:
    """Decode a legacy frame: JSON text, or a binary frame of big-endian uint32 part count and
    offsets, the JSON message, then buffers. Raises :class:`ProtocolError`."""
    if isinstance(frame, str):
        body, buffers = _json(frame, "a legacy message"), []
    else:
        offsets = _offset_table(frame, "!I", 1, "a legacy binary frame") + [len(frame)]
        view = memoryview(frame).toreadonly()
        body = _json(frame, "a legacy binary frame's message", offsets[0], offsets[1])
        buffers = [view[offsets[i] : offsets[i + 1]] for i in range(1, len(offsets) - 1)]
    return _legacy_message(body, buffers)


def _legacy_message(body: Any, buffers: list[memoryview]) -> Message:
    """A checked message from a legacy frame's JSON object, which names its channel."""
    if not isinstance(body, dict):
        raise ProtocolError("a legacy message is not a JSON object")
    channel = body.get("channel")
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise ProtocolError(f"a legacy message names no known channel ({_preview(channel)})")
    get = body.get
    return _message(get("header"), get("parent_header"), get("metadata"), get("content"), buffers, channel)


def decode_v1(frame: bytes | bytearray) -> Message:
    """Decode a v1 binary frame: little-endian uint64 offset count and offsets (the last one the
    frame's end), channel name, four JSON parts, buffers. Raises :class:`ProtocolError`."""
    offsets = _offset_table(frame, "<Q", len(_JSON_PARTS) + 2, "a v1 frame")
    if offsets[-1] != len(frame):
        raise ProtocolError("a v1 frame's last offset is not its end")
    view = memoryview(frame).toreadonly()
    name = bytes(view[offsets[0] : offsets[1]])
    channel = _V1_CHANNELS.get(name)
    if channel is None:
        raise ProtocolError(f"a v1 frame names no known channel ({_preview(name)})")
    parts = [  # an empty part reads as an empty object
        _json(frame, f"a v1 frame's {key}", start, end) if start < end else None
        for key, start, end in zip(_JSON_PARTS, offsets[1:5], offsets[2:6])
    ]
    buffers = [view[offsets[i] : offsets[i + 1]] for i in range(5, len(offsets) - 1)]
    return _message(*parts, buffers, channel)


def _offset_table(frame: bytes | bytearray, word: str, minimum: int, what: str) -> list[int]:
    """The offsets that follow a frame's leading count (``word`` is the struct format of one
    entry), checked to start right after the table, never to decrease and to stay in the frame."""
    width = struct.calcsize(word)
    if len(frame) < width:
        raise ProtocolError(f"{what} is too short to hold its offset count")
    (count,) = struct.unpack_from(word, frame)
    if count < minimum:
        raise ProtocolError(f"{what} claims {count} offsets, fewer than the {minimum} it needs")
    table_end = width * (count + 1)
    if table_end > len(frame):
        raise ProtocolError(f"{what} claims {count} offsets, more than it can hold")
    offsets = list(struct.unpack_from(f"{word[0]}{count}{word[1]}", frame, width))
    if offsets[0] != table_end:
        raise ProtocolError(f"{what}'s first part does not start right after its offset table")
    previous = table_end
    for offset in offsets:
        if offset < previous:
            raise ProtocolError(f"{what}'s offsets decrease")
        previous = offset
    if previous > len(frame):
        raise ProtocolError(f"{what}'s offset table points past its end")
    return offsets


def _json(data: str | bytes | bytearray, what: str, start: int = 0, end: int | None = None) -> Any:
    """The JSON value of a text, or of the UTF-8 bytes ``data[start:end]`` read in place."""
    try:
        return _loads(data) if isinstance(data, str) else jsonbytes.loads(data, start, end)
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise ProtocolError(f"{what} is not valid JSON") from None


def _message(
    header: Any, parent: Any, metadata: Any, content: Any, buffers: list[memoryview], channel: str
) -> Message:
    """A checked message from its four JSON parts: the header an object with a string msg_type,
    the others objects (missing or null ones become empty)."""
    if type(header) is not dict:
        raise ProtocolError("a message has no header object")
    msg_type, msg_id = header.get("msg_type"), header.get("msg_id", "")
    if type(msg_type) is not str or not msg_type:
        raise ProtocolError("a message header has no msg_type")
    if type(msg_id) is not str:
        raise ProtocolError("a message header's msg_id is not a string")
    if not type(parent) is type(metadata) is type(content) is dict:
        parent, metadata, content = (_object(v, k) for k, v in zip(_JSON_PARTS[1:], (parent, metadata, content)))
    fields = _CONTENT_FIELDS.get(msg_type)
    if fields is not None:
        _check_content(msg_type, content, fields)
    return {
        "header": header,
        "parent_header": parent,
        "metadata": metadata,
        "content": content,
        "buffers": buffers,
        "channel": channel,
        "msg_id": msg_id,
        "msg_type": msg_type,
    }


#: The content fields the package reads from the messages it shows: (name, type, required).
_DISPLAY = (("data", dict, True), ("metadata", dict, False), ("transient", dict, False))
_CONTENT_FIELDS: dict[str, tuple[tuple[str, type, bool], ...]] = {
    "stream": (("name", str, True), ("text", str, True)),
    "display_data": _DISPLAY,
    "update_display_data": _DISPLAY,
    "execute_result": _DISPLAY,
    "error": (("ename", str, False), ("evalue", str, False), ("traceback", list, False)),
    "status": (("execution_state", str, True),),
}


def _check_content(msg_type: str, content: dict, fields: tuple[tuple[str, type, bool], ...]) -> None:
    for name, kind, required in fields:
        value = content.get(name)
        if value is None:
            if required:
                raise ProtocolError(f"a {msg_type} message has no {name}")
        elif type(value) is not kind:
            raise ProtocolError(f"a {msg_type} message's {name} is not a {kind.__name__}")


def _object(value: Any, key: str) -> dict:
    if value is None:
        return {}
    if type(value) is not dict:
        raise ProtocolError(f"a message's {key} is not an object")
    return value


def _preview(value: Any) -> str:
    """A short repr of a received name, for an error message."""
    if isinstance(value, (str, bytes)):
        return repr(value[:30]) + ("..." if len(value) > 30 else "")
    return type(value).__name__


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
