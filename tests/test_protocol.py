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
from remote_magic.errors import ProtocolError

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
    decoded = protocol.decode_legacy(json.dumps({"header": {"msg_id": "m", "msg_type": "comm_msg"}, "channel": "iopub"}))
    assert decoded["parent_header"] == {} and decoded["metadata"] == {} and decoded["content"] == {}
    assert decoded["buffers"] == [] and decoded["msg_type"] == "comm_msg" and decoded["msg_id"] == "m"


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


# ---------------------------------------------------------------------------------- malformed frames


def v1_frame(parts: list[bytes], channel: bytes = b"iopub", count: int | None = None, offsets=None) -> bytes:
    """A v1 frame of raw parts; ``count``/``offsets`` override the table it should have."""
    chunks = [channel, *parts]
    table = [8 * (len(chunks) + 2)]
    for chunk in chunks:
        table.append(table[-1] + len(chunk))
    table = list(offsets) if offsets is not None else table
    count = len(table) if count is None else count
    return struct.pack(f"<Q{len(table)}Q", count, *table) + b"".join(chunks)


def legacy_frame(parts: list[bytes], count: int | None = None, offsets=None) -> bytes:
    """A legacy binary frame of raw parts (the JSON message first); overrides as for v1_frame."""
    table = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        table.append(table[-1] + len(part))
    table = list(offsets) if offsets is not None else table
    count = len(table) if count is None else count
    return struct.pack(f"!I{len(table)}I", count, *table) + b"".join(parts)


HEADER = b'{"msg_id": "m", "msg_type": "status"}'
GOOD_V1 = [HEADER, b"{}", b"{}", b'{"execution_state": "idle"}']
GOOD_LEGACY = b'{"header": {"msg_id": "m", "msg_type": "status"}, "content": {"execution_state": "idle"}, "channel": "iopub"}'
V1, LEGACY = protocol.decode_v1, protocol.decode_legacy

def _with_content(msg_type: str, content: dict) -> str:
    return json.dumps({"header": {"msg_type": msg_type}, "content": content, "channel": "iopub"})


MALFORMED = {
    # v1 offset tables
    "v1 empty": (V1, b"", "too short to hold its offset count"),
    "v1 count 0": (V1, v1_frame(GOOD_V1, count=0), "claims 0 offsets, fewer than the 6"),
    "v1 too few parts": (V1, v1_frame(GOOD_V1[:3]), "claims 5 offsets, fewer"),
    "v1 huge count": (V1, v1_frame(GOOD_V1, count=2**64 - 1), "more than it can hold"),
    "v1 table truncated": (V1, v1_frame(GOOD_V1)[:30], "more than it can hold"),
    "v1 first offset": (V1, v1_frame(GOOD_V1, offsets=[0, 61, 98, 100, 102, 129]), "right after"),
    "v1 decreasing": (V1, v1_frame(GOOD_V1, offsets=[56, 61, 98, 90, 102, 129]), "offsets decrease"),
    "v1 past end": (V1, v1_frame(GOOD_V1, offsets=[56, 61, 98, 100, 102, 2**40]), "past its end"),
    "v1 trailing bytes": (V1, v1_frame(GOOD_V1) + b"x", "last offset is not its end"),
    "v1 truncated": (V1, v1_frame(GOOD_V1)[:-1], "past its end"),
    "v1 unknown channel": (V1, v1_frame(GOOD_V1, channel=b"iopubx"), "no known channel (b'iopubx')"),
    "v1 channel not UTF-8": (V1, v1_frame(GOOD_V1, channel=b"\xff" * 99), "no known channel"),
    # v1 JSON parts
    "v1 header not UTF-8": (V1, v1_frame([b'{"a": "\xff"}', *GOOD_V1[1:]]), "header is not valid UTF-8"),
    "v1 content not JSON": (V1, v1_frame([*GOOD_V1[:3], b"{nope"]), "content is not valid JSON"),
    "v1 nested too deep": (V1, v1_frame([*GOOD_V1[:3], b"[" * 100000]), "content is not valid JSON"),
    "v1 empty header": (V1, v1_frame([b"", *GOOD_V1[1:]]), "no header object"),
    "v1 header a list": (V1, v1_frame([b"[]", *GOOD_V1[1:]]), "no header object"),
    "v1 no msg_type": (V1, v1_frame([b'{"msg_id": "m"}', *GOOD_V1[1:]]), "no msg_type"),
    "v1 msg_type a number": (V1, v1_frame([b'{"msg_type": 5}', *GOOD_V1[1:]]), "no msg_type"),
    "v1 msg_id a list": (V1, v1_frame([b'{"msg_type": "s", "msg_id": []}', *GOOD_V1[1:]]), "msg_id"),
    "v1 parent a string": (V1, v1_frame([HEADER, b'"p"', b"{}", b"{}"]), "parent_header is not an object"),
    "v1 metadata a list": (V1, v1_frame([HEADER, b"{}", b"[]", b"{}"]), "metadata is not an object"),
    "v1 content a number": (V1, v1_frame([HEADER, b"{}", b"{}", b"1"]), "content is not an object"),
    # legacy binary frames
    "legacy binary short": (LEGACY, b"\x00\x00", "too short to hold its offset count"),
    "legacy count 0": (LEGACY, legacy_frame([GOOD_LEGACY], count=0), "fewer than the 1"),
    "legacy huge count": (LEGACY, legacy_frame([GOOD_LEGACY, b"b"], count=2**32 - 1), "more than"),
    "legacy first offset": (LEGACY, legacy_frame([GOOD_LEGACY, b"b"], offsets=[4, 83]), "right after"),
    "legacy decreasing": (LEGACY, legacy_frame([GOOD_LEGACY, b"b", b"c"], offsets=[16, 85, 84]), "decrease"),
    "legacy past end": (LEGACY, legacy_frame([GOOD_LEGACY, b"b"], offsets=[12, 2**32 - 1]), "past its end"),
    "legacy JSON part": (LEGACY, legacy_frame([b"\xfe{}", b"b"]), "message is not valid UTF-8"),
    # legacy JSON messages
    "legacy not JSON": (LEGACY, "{'header': 1}", "not valid JSON"),
    "legacy an array": (LEGACY, "[1, 2]", "not a JSON object"),
    "legacy no channel": (LEGACY, '{"header": {"msg_type": "s"}}', "no known channel (NoneType)"),
    "legacy channel a list": (LEGACY, '{"header": {"msg_type": "s"}, "channel": []}', "(list)"),
    "legacy unknown channel": (LEGACY, '{"header": {"msg_type": "s"}, "channel": "x"}', "('x')"),
    "legacy no header": (LEGACY, '{"channel": "iopub"}', "no header object"),
    "legacy content a list": (LEGACY, GOOD_LEGACY[:-1].decode() + ', "content": []}', "content is not"),
    # the content fields the package reads from what it shows
    "stream without name": (LEGACY, _with_content("stream", {"text": "x"}), "stream message has no name"),
    "stream text a list": (LEGACY, _with_content("stream", {"name": "stdout", "text": []}), "text is not a str"),
    "display data a list": (LEGACY, _with_content("display_data", {"data": []}), "data is not a dict"),
    "result without data": (LEGACY, _with_content("execute_result", {}), "execute_result message has no data"),
    "update transient a str": (
        LEGACY,
        _with_content("update_display_data", {"data": {}, "transient": "x"}),
        "transient is not a dict",
    ),
    "error traceback a str": (LEGACY, _with_content("error", {"traceback": "x"}), "traceback is not a list"),
    "status without state": (LEGACY, _with_content("status", {}), "status message has no execution_state"),
}


@pytest.mark.parametrize("decode, frame, reason", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise_protocol_error_saying_what_is_wrong(decode, frame, reason):
    with pytest.raises(ProtocolError) as caught:
        decode(frame)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_the_well_formed_frames_above_decode():
    # The malformed cases are each one defect away from these.
    assert protocol.decode_v1(v1_frame(GOOD_V1))["content"] == {"execution_state": "idle"}
    assert protocol.decode_legacy(legacy_frame([GOOD_LEGACY, b"b"]))["buffers"] == [b"b"]
    msg = protocol.decode_legacy('{"header": {"msg_type": "s"}, "parent_header": null, "channel": "shell"}')
    assert msg["parent_header"] == {} and msg["msg_id"] == "" and msg["channel"] == "shell"


def test_decode_frame_reads_text_frames_as_legacy_json_and_checks_their_utf8():
    text = GOOD_LEGACY.decode()
    for data in (text, GOOD_LEGACY):
        assert protocol.decode_frame(data, text=True, v1=True)["msg_type"] == "status"
    assert protocol.decode_frame(v1_frame(GOOD_V1), text=False, v1=True)["channel"] == "iopub"
    assert protocol.decode_frame(legacy_frame([GOOD_LEGACY]), text=False, v1=False)["channel"] == "iopub"
    with pytest.raises(ProtocolError, match="text frame is not valid UTF-8"):
        protocol.decode_frame(b'{"a": "\xc3"}', text=True, v1=False)


def test_a_huge_claimed_count_allocates_nothing_in_proportion():
    import tracemalloc

    frames = [v1_frame(GOOD_V1, count=2**40), legacy_frame([GOOD_LEGACY], count=2**31)]
    tracemalloc.start()
    try:
        for frame in frames:
            decode = protocol.decode_v1 if frame is frames[0] else protocol.decode_legacy
            with pytest.raises(ProtocolError):
                decode(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@pytest.mark.parametrize("codec", ["legacy", "v1"])
def test_buffers_are_views_of_the_frame_not_copies(codec):
    encode, decode = {"legacy": (protocol.encode_legacy, LEGACY), "v1": (protocol.encode_v1, V1)}[codec]
    frame = encode(sample([b"a" * 100, b"b" * 50]))
    buffers = decode(frame)["buffers"]
    assert [bytes(b) for b in buffers] == [b"a" * 100, b"b" * 50]
    assert all(b.obj is frame and b.readonly for b in buffers)


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
