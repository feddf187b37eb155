"""Message building and both websocket codecs, checked against Jupyter Server's own (de)serializers."""

from __future__ import annotations

import json
import struct

import pytest
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)

from remote_magic import protocol

SESSION = "0123456789abcdef0123456789abcdef"

BUFFER_CASES = {
    "no buffers": [],
    "one buffer": [b"\x00\x01\x02binary\xff"],
    "several buffers": [b"", b"a" * 1000, bytes(range(256))],
}


def sample(buffers: list[bytes], channel: str = "shell") -> protocol.Message:
    msg = protocol.new_message(
        "comm_msg",
        {"comm_id": "c1", "data": {"text": "héllo ✓ \u2603", "n": [1, 2.5, None, True]}},
        session=SESSION,
        channel=channel,
        metadata={"deletedFields": []},
    )
    msg["buffers"] = list(buffers)
    return msg


def without_date(header: dict) -> dict:
    return {k: v for k, v in header.items() if k != "date"}


# ---------------------------------------------------------------------------------- messages


def test_new_message_has_every_field_the_server_needs():
    msg = protocol.new_message("execute_request", {"code": "1"}, session=SESSION)
    header = msg["header"]
    assert set(header) == {"msg_id", "msg_type", "session", "username", "date", "version"}
    assert header["msg_type"] == msg["msg_type"] == "execute_request"
    assert header["msg_id"] == msg["msg_id"] and len(header["msg_id"]) == 32
    assert header["session"] == SESSION
    assert header["version"] >= "5.3"
    assert header["date"].endswith("+00:00")  # ISO-8601, with a time zone
    assert msg["parent_header"] == {} and msg["metadata"] == {} and msg["buffers"] == []
    assert msg["channel"] == "shell"


def test_reply_message_carries_its_parent_header():
    request = protocol.new_message("input_request", {"prompt": "?"}, session="kernel", channel="stdin")
    reply = protocol.new_message("input_reply", {"value": "x"}, session=SESSION, channel="stdin", parent=request)
    assert reply["parent_header"] == request["header"]
    assert reply["parent_header"] is not request["header"]  # a copy, not shared
    assert protocol.parent_msg_id(reply) == request["msg_id"]
    assert reply["msg_id"] != request["msg_id"]


def test_session_ids_are_fresh():
    assert protocol.new_session_id() != protocol.new_session_id()


# ---------------------------------------------------------------------------------- legacy codec


@pytest.mark.parametrize("buffers", BUFFER_CASES.values(), ids=BUFFER_CASES.keys())
def test_legacy_encoding_is_what_the_server_decodes(buffers):
    msg = sample(buffers)
    frame = protocol.encode_legacy(msg)
    if buffers:
        assert isinstance(frame, bytes)
        decoded = deserialize_binary_message(frame)
    else:
        assert isinstance(frame, str)  # a text frame when there are no buffers
        decoded = json.loads(frame)
        decoded["buffers"] = []
    assert without_date(decoded["header"]) == without_date(msg["header"])
    assert decoded["parent_header"] == msg["parent_header"]
    assert decoded["metadata"] == msg["metadata"]
    assert decoded["content"] == msg["content"]
    assert decoded["channel"] == "shell"
    assert [bytes(b) for b in decoded["buffers"]] == buffers


@pytest.mark.parametrize("buffers", BUFFER_CASES.values(), ids=BUFFER_CASES.keys())
def test_legacy_decoding_reads_what_the_server_encodes(buffers):
    msg = sample(buffers, channel="iopub")
    server_msg = {k: msg[k] for k in ("header", "parent_header", "metadata", "content", "buffers", "channel")}
    frame = serialize_binary_message(server_msg) if buffers else json.dumps(server_msg)
    decoded = protocol.decode_legacy(frame)
    assert decoded["header"] == msg["header"]
    assert decoded["content"] == msg["content"]
    assert decoded["metadata"] == msg["metadata"]
    assert decoded["channel"] == "iopub"
    assert decoded["msg_id"] == msg["msg_id"] and decoded["msg_type"] == "comm_msg"
    assert [bytes(b) for b in decoded["buffers"]] == buffers


def test_legacy_binary_frame_layout_is_big_endian_offsets():
    frame = protocol.encode_legacy(sample([b"xyz"]))
    count, first, second = struct.unpack_from("!3I", frame)
    assert (count, first) == (2, 12)  # JSON part right after the 3-word table
    assert frame[second:] == b"xyz"
    assert json.loads(frame[first:second])["header"]["session"] == SESSION


def test_legacy_decode_fills_missing_fields():
    decoded = protocol.decode_legacy(json.dumps({"header": {"msg_id": "m", "msg_type": "status"}, "channel": "iopub"}))
    assert decoded["parent_header"] == {} and decoded["metadata"] == {} and decoded["content"] == {}
    assert decoded["buffers"] == [] and decoded["msg_type"] == "status" and decoded["msg_id"] == "m"


# ---------------------------------------------------------------------------------- v1 codec


@pytest.mark.parametrize("buffers", BUFFER_CASES.values(), ids=BUFFER_CASES.keys())
def test_v1_encoding_is_what_the_server_decodes(buffers):
    msg = sample(buffers)
    channel, parts = deserialize_msg_from_ws_v1(protocol.encode_v1(msg))
    assert channel == "shell"
    header, parent, metadata, content = (json.loads(p) for p in parts[:4])
    assert header == msg["header"]
    assert parent == {} and metadata == msg["metadata"] and content == msg["content"]
    assert [bytes(b) for b in parts[4:]] == buffers
    # In v1 the server signs these parts and forwards them to the kernel unchanged: the kernel's
    # Session must read them as the message we meant.
    session = Session(key=b"k")
    received = session.deserialize([session.sign(parts[:4]), *parts])
    assert received["msg_id"] == msg["msg_id"] and received["msg_type"] == "comm_msg"
    assert received["content"] == msg["content"]
    assert [bytes(b) for b in received["buffers"]] == buffers


@pytest.mark.parametrize("buffers", BUFFER_CASES.values(), ids=BUFFER_CASES.keys())
def test_v1_decoding_reads_what_the_server_encodes(buffers):
    msg = sample(buffers, channel="iopub")
    session = Session()
    # What the server writes for a kernel message: its raw ZMQ parts, buffers last.
    parts = [session.pack(msg[k]) for k in ("header", "parent_header", "metadata", "content")] + buffers
    decoded = protocol.decode_v1(serialize_msg_to_ws_v1(parts, "iopub"))
    assert decoded["channel"] == "iopub"
    assert decoded["header"] == msg["header"] and decoded["content"] == msg["content"]
    assert decoded["msg_type"] == "comm_msg" and decoded["msg_id"] == msg["msg_id"]
    assert [bytes(b) for b in decoded["buffers"]] == buffers


def test_v1_decoding_reads_the_servers_own_status_messages():
    # The server builds `restarting`/`dead` itself with Session.pack and an empty parent header.
    session = Session()
    status = session.msg("status", {"execution_state": "restarting"})
    decoded = protocol.decode_v1(serialize_msg_to_ws_v1(status, "iopub", session.pack))
    assert decoded["msg_type"] == "status"
    assert decoded["content"] == {"execution_state": "restarting"}
    assert decoded["parent_header"] == {}
    assert decoded["buffers"] == []


def test_v1_round_trip_of_our_own_codec():
    msg = sample([b"\x00" * 10, memoryview(b"view")])
    decoded = protocol.decode_v1(protocol.encode_v1(msg))
    assert decoded["buffers"] == [b"\x00" * 10, b"view"]
    assert decoded["header"] == msg["header"] and decoded["content"] == msg["content"]


def test_v1_frame_layout_is_little_endian_offsets():
    frame = protocol.encode_v1(sample([]))
    (count,) = struct.unpack_from("<Q", frame)
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    assert count == 6  # channel start, 4 JSON parts, end
    assert offsets[0] == 8 * (count + 1)
    assert frame[offsets[0] : offsets[1]] == b"shell"
    assert offsets[-1] == len(frame)


# ---------------------------------------------------------------------------------- outputs


def iopub(msg_type: str, content: dict, parent: str = "p") -> protocol.Message:
    return protocol.decode_legacy(
        json.dumps(
            {
                "header": {"msg_id": "m", "msg_type": msg_type},
                "parent_header": {"msg_id": parent},
                "content": content,
                "channel": "iopub",
            }
        )
    )


def test_outputs_from_messages_are_nbformat_dicts():
    assert protocol.output_from_message(iopub("stream", {"name": "stderr", "text": "x"})) == {
        "output_type": "stream",
        "name": "stderr",
        "text": "x",
    }
    result = protocol.output_from_message(
        iopub("execute_result", {"data": {"text/plain": "2"}, "metadata": {}, "execution_count": 3})
    )
    assert result == {"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {}, "execution_count": 3}
    error = protocol.output_from_message(iopub("error", {"ename": "E", "evalue": "v", "traceback": ["t"]}))
    assert error == {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["t"]}
    display = iopub("display_data", {"data": {"text/html": "<b/>"}, "metadata": {"a": 1}, "transient": {"display_id": "d"}})
    assert protocol.output_from_message(display) == {
        "output_type": "display_data",
        "data": {"text/html": "<b/>"},
        "metadata": {"a": 1},
    }
    assert protocol.display_id(display) == "d"
    assert protocol.output_from_message(iopub("status", {"execution_state": "idle"})) is None
    assert protocol.parent_msg_id(display) == "p"
