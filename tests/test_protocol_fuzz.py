"""Fuzzing both websocket decoders: every frame decodes to a well-formed message or raises
ProtocolError, nothing else."""

from __future__ import annotations

import json
import os
import random
import struct

import pytest

from remote_magic import protocol
from remote_magic.errors import ProtocolError

# ---------------------------------------------------------------------------------- fuzzing
#
# Random frames, and valid frames mutated (bit flips, truncation, inserted and deleted bytes,
# offset table edits, JSON-breaking bytes, wrong JSON types), for both protocols: every one decodes
# to a well-formed message or raises ProtocolError, nothing else. A fixed corpus runs every time,
# and a fresh one whose seed a failure prints (REMOTE_MAGIC_FUZZ_SEED=<seed> replays it).

FIXED_SEED = 20240909
RANDOM_SEED = int(os.environ.get("REMOTE_MAGIC_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
CODECS = {  # name: (encode, decode, struct format of an offset table entry)
    "v1": (protocol.encode_v1, protocol.decode_v1, "<Q"),
    "legacy": (protocol.encode_legacy, protocol.decode_legacy, "!I"),
}
TEXT = "aZ0 _-\"\\\n\t/é✓\u2603\U0001f600\x00\u2028{}[]"


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(TEXT) for _ in range(rng.randrange(12)))


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(6 if depth < 3 else 4)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**53, 1.5, -0.25])
    if kind in (1, 2, 3):
        return random_text(rng)
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return random_object(rng, depth + 1)


def random_object(rng: random.Random, depth: int = 0) -> dict:
    return {random_text(rng): random_json(rng, depth) for _ in range(rng.randrange(4))}


def random_message(rng: random.Random) -> protocol.Message:
    msg_type = rng.choice(["stream", "status", "comm_msg", "execute_reply", random_text(rng) or "x"])
    channel = rng.choice(sorted(protocol.CHANNELS))
    content = random_object(rng)
    if msg_type == "stream":  # the fields the package reads must have their types
        content.update(name=random_text(rng), text=random_text(rng))
    elif msg_type == "status":
        content["execution_state"] = random_text(rng)
    msg = protocol.new_message(msg_type, content, session=random_text(rng), channel=channel)
    msg["metadata"] = random_object(rng)
    msg["parent_header"] = rng.choice([{}, {"msg_id": random_text(rng), "session": random_text(rng)}])
    msg["buffers"] = [rng.randbytes(rng.randrange(40)) for _ in range(rng.choice([0, 0, 1, 3]))]
    return msg


def mutate_bytes(rng: random.Random, frame: bytes, word: str) -> bytes:
    data, width = bytearray(frame), struct.calcsize(word)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(data) + 1)
        op = rng.randrange(6)
        if op == 0 and data:  # flip a bit
            data[pos % len(data)] ^= 1 << rng.randrange(8)
        elif op == 1:  # truncate
            del data[pos:]
        elif op == 2:  # insert bytes
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 3:  # delete bytes
            del data[pos : pos + rng.randint(1, 16)]
        elif op == 4 and len(data) >= width:  # edit the count or an offset
            slot = rng.randrange(min(len(data) // width, 8)) * width
            (old,), top, end = struct.unpack_from(word, data, slot), 2 ** (8 * width) - 1, len(data)
            value = rng.choice([0, 1, old - 1, old + 1, old + width, end, end + 1, top, top // 2, rng.randrange(top)])
            struct.pack_into(word, data, slot, value & top)
        elif data:  # a byte that breaks JSON or UTF-8
            data[pos % len(data)] = rng.choice(b'"{}[]\\,:\x00\xff\xc3\x80')
    return bytes(data)


def mutate_message(rng: random.Random, msg: protocol.Message, codec: str) -> protocol.Message:
    """Valid framing, wrong content: a part, the channel, msg_type or msg_id replaced by any JSON
    value (v1 can only carry a string channel)."""
    key = rng.choice(["header", "parent_header", "metadata", "content", "channel", "msg_type", "msg_id", "header keys"])
    if key == "channel":
        msg["channel"] = random_json(rng) if codec == "legacy" else random_text(rng)
    elif key in ("msg_type", "msg_id"):
        msg["header"][key] = random_json(rng)
    elif key == "header keys":
        msg["header"].pop(rng.choice(["msg_type", "msg_id"]))
    else:
        msg[key] = random_json(rng)
    return msg


def fuzz_cases(rng: random.Random, codec: str):
    """(frame, message it encodes or None) pairs: about 2,500 per codec."""
    encode, _, word = CODECS[codec]
    for _ in range(300):  # valid messages: must round-trip
        msg = random_message(rng)
        yield encode(msg), msg
    for _ in range(1800):
        frame = encode(random_message(rng))
        frame = frame.encode() if isinstance(frame, str) else frame
        yield mutate_bytes(rng, frame, word), None
    for _ in range(300):
        yield encode(mutate_message(rng, random_message(rng), codec)), None
    for _ in range(100 if codec == "legacy" else 0):  # any JSON value where a message should be
        yield json.dumps(random_json(rng)), None
    for _ in range(300):  # random bytes, sometimes behind a plausible offset table
        count = rng.randrange(10)
        table = [rng.randrange(8 * count + 80) for _ in range(count)]
        prefix = b"" if rng.random() < 0.3 else struct.pack(f"{word[0]}{count + 1}{word[1]}", count, *table)
        yield prefix + rng.randbytes(rng.randrange(80)), None


def decode_checked(codec: str, frame: str | bytes, seed: int):
    """Decode, failing with the seed and the frame on anything but a message or ProtocolError."""
    text = isinstance(frame, str) or (codec == "legacy" and frame[:1] == b"{")
    try:
        msg = protocol.decode_frame(frame, text=text, v1=codec == "v1")
        assert type(msg["header"]) is dict and msg["header"]["msg_type"] == msg["msg_type"]
        assert type(msg["msg_type"]) is str and msg["msg_type"] and type(msg["msg_id"]) is str
        assert msg["channel"] in protocol.CHANNELS
        assert all(type(msg[k]) is dict for k in ("parent_header", "metadata", "content"))
        assert all(isinstance(b, memoryview) for b in msg["buffers"])
        return msg
    except ProtocolError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    except Exception as exc:
        pytest.fail(
            f"{type(exc).__name__}: {exc} decoding the {codec} frame {frame[:120]!r}; "
            f"replay with REMOTE_MAGIC_FUZZ_SEED={seed}"
        )


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("seed", [FIXED_SEED, RANDOM_SEED], ids=["fixed-seed", "random-seed"])
def test_fuzzed_frames_decode_or_raise_protocol_error(codec, seed):
    rng = random.Random(seed)
    rejected = 0
    for frame, sent in fuzz_cases(rng, codec):
        msg = decode_checked(codec, frame, seed)
        rejected += msg is None
        if sent is not None:
            where = f"(replay with REMOTE_MAGIC_FUZZ_SEED={seed})"
            assert msg is not None, f"a valid {codec} frame was rejected {where}"
            for key in ("header", "parent_header", "metadata", "content", "channel"):
                assert msg[key] == sent[key], f"{key} changed in a {codec} round trip {where}"
            assert [bytes(b) for b in msg["buffers"]] == sent["buffers"], f"buffers changed {where}"
    assert rejected > 1500  # the mutations do reach the checks
