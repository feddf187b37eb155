"""jsonbytes.loads gives exactly what json.loads gives for the same bytes' text, value or error,
while decoding long plain strings straight from the bytes."""

from __future__ import annotations

import base64
import json
import os
import random
import tracemalloc

import pytest

from remote_magic import jsonbytes

FIXED_SEED = 20260101
RANDOM_SEED = int(os.environ.get("REMOTE_MAGIC_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
SHORT = 'aZ0 _-"\\\n\t/é✓\u2603\U0001f600\x00\x1f\x7f\u2028{}[]:,NaN'
ASCII = "ABCxyz019+/= ."
UNICODE = ASCII + "é✓\u2603\U0001f600"  # no escape once encoded without ensure_ascii
WINDOW = 16  # small windows, so that a few hundred bytes make a long literal


def long_string(rng: random.Random) -> str:
    """A literal that spans windows: plain, or with escapes, unicode and surrogate pairs in it."""
    size = rng.randrange(2 * WINDOW, 12 * WINDOW)
    alphabet = rng.choice([ASCII, UNICODE])
    text = "".join(rng.choice(alphabet) for _ in range(size))
    if rng.random() < 0.3:  # an escape somewhere: a quote, a backslash, a newline, a control character
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(['"', "\\", "\n", "\x01", "\\\\\\", '\\"']) + text[at:]
    return text


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        if rng.random() < 0.05:
            return rng.choice([float("nan"), float("inf"), -float("inf")])
        return rng.choice([None, True, False, 0, -7, 2**70, 1.5e-300])
    if kind == 1:
        return "".join(rng.choice(SHORT) for _ in range(rng.randrange(10)))
    if kind in (2, 3):
        return long_string(rng)
    if kind == 4:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = [long_string(rng) if rng.random() < 0.15 else random_value(rng, 4) for _ in range(rng.randrange(5))]
    return {key if isinstance(key, str) else str(key): random_value(rng, depth + 1) for key in keys}


def random_document(rng: random.Random) -> bytes:
    value = random_value(rng)
    text = json.dumps(
        value,
        ensure_ascii=rng.random() < 0.5,  # True: surrogate pairs as \\ud83d\\ude00, else raw UTF-8
        indent=rng.choice([None, None, 1, "\t"]),
        separators=rng.choice([None, (",", ":"), (" , ", " : ")]),
    )
    return text.encode("utf-8", "surrogatepass")


def mutated(rng: random.Random, data: bytes) -> bytes:
    """One defect: a byte flipped, replaced by one that breaks JSON or UTF-8, inserted or cut."""
    data = bytearray(data)
    at = rng.randrange(len(data) + 1)
    op = rng.randrange(4)
    if op == 0 and data:
        data[at % len(data)] ^= 1 << rng.randrange(8)
    elif op == 1 and data:
        data[at % len(data)] = rng.choice(b'"\\\x00\x0a\xff\xc3\x80{]:,N')
    elif op == 2:
        data[at:at] = rng.choice([b'"', b"\\", b"\xed\xa0\x80", b"\x01", b"NaN", b","])
    else:
        del data[at:]
    return bytes(data)


def outcome(decode, data: bytes):
    """What a decoder makes of ``data``: its value's repr (NaN equals itself there), or the error's class."""
    try:
        return "value", repr(decode(data))
    except UnicodeDecodeError:
        return "error", "UnicodeDecodeError"
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


def json_loads(data: bytes):
    return json.loads(str(data, "utf-8"))


@pytest.fixture
def cut_out(monkeypatch):
    """Small windows and no size threshold; returns, for each call that cut literals out, how
    many, and whether the skeleton settled the value (else it was parsed whole)."""
    monkeypatch.setattr(jsonbytes, "LARGE", 0)
    monkeypatch.setattr(jsonbytes, "WINDOW", WINDOW)
    seen: list[tuple[int, bool]] = []
    parse_around = jsonbytes._parse_around

    def recording(buffer, start, end, literals):
        seen.append((len(literals), False))
        value = parse_around(buffer, start, end, literals)
        seen[-1] = (len(literals), True)
        return value

    monkeypatch.setattr(jsonbytes, "_parse_around", recording)
    return seen


@pytest.mark.parametrize("seed", [FIXED_SEED, RANDOM_SEED], ids=["fixed-seed", "random-seed"])
def test_generated_documents_decode_as_json_decodes_them(cut_out, seed):
    rng = random.Random(seed)
    for case in range(3000):
        data = random_document(rng)
        if case % 2:
            data = mutated(rng, data)
        got, expected = outcome(jsonbytes.loads, bytearray(data)), outcome(json_loads, data)
        assert got == expected, f"{data[:200]!r}: replay with REMOTE_MAGIC_FUZZ_SEED={seed}"
    assert sum(count for count, settled in cut_out if settled) > 500  # not all parsed whole


@pytest.mark.parametrize(
    "document, cut",
    [
        (b'{"a": "' + b"x" * 100 + b'", "b": [1, "' + b"y" * 40 + b'"]}', [(2, True)]),
        (b'["' + "\u00e9\U0001f600".encode() * 30 + b'"]', [(1, True)]),  # multi-byte UTF-8, read in place
        (b'{"' + b"k" * 100 + b'" :1, "v": "' + b"x" * 100 + b'"}', [(1, True)]),  # a key stays in the skeleton
        (b'["' + b"x" * 100 + b'", NaN]', [(1, False)]),  # a NaN of the document's own: parsed whole
        (b'["' + b"x" * 100 + b'", "NaN"]', [(1, False)]),  # one in a short string, likewise
        (b'["' + b"x" * 100 + b'", Infinity, -Infinity]', [(1, True)]),
        (b'["' + b"x" * 50 + b'\\ud83d\\ude00' + b"x" * 50 + b'"]', []),  # escaped: json decodes it
        (b'["\\"' + b"x" * 100 + b'"]', []),  # an escaped quote before the window
        (b'["\\\\' + b"x" * 100 + b'"]', []),  # an escaped backslash before it
        (b'["\\\\", "' + b"x" * 100 + b'"]', [(1, True)]),  # ... in a literal of its own
        (b'["\\"", "' + b"x" * 100 + b'"]', [(1, True)]),  # an escaped quote in a literal of its own
        (b"[" + b"1, " * 100 + b'"' + b"x" * 100 + b'"]', [(1, True)]),  # a window of numbers is no literal
    ],
)
def test_documents_decode_as_json_decodes_them_with_the_literals_cut_out(cut_out, document, cut):
    assert outcome(jsonbytes.loads, document) == outcome(json_loads, document)
    assert cut_out == cut


@pytest.mark.parametrize(
    "document",
    [
        b'["' + b"x" * 100 + b'\x01"]',  # a control character in a long literal
        b'["' + b"x" * 100 + b'\xff"]',  # invalid UTF-8 in it
        b'["' + b"x" * 100 + b'\xed\xa0\x80"]',  # a UTF-8 encoded surrogate
        b'["' + b"x" * 100,  # unterminated
        b'["' + b"x" * 100 + b'" "' + b"y" * 100 + b'"]',  # no comma between
        b'{"a": "' + b"x" * 100 + b'" : 1}',
        b'["' + b"x" * 100 + b'"]]',
        b'-"' + b"x" * 100 + b'"',
        b'\\"' + b"x" * 100 + b'"',
    ],
)
def test_invalid_documents_raise_what_json_raises(cut_out, document):
    got = outcome(jsonbytes.loads, document)
    assert got[0] == "error" and got == outcome(json_loads, document)


def test_a_display_message_s_image_costs_its_value_and_nothing_more():
    """At the real thresholds: the only large allocation is the decoded string."""
    image = base64.b64encode(os.urandom(6 * 2**20))
    content = bytearray(b'{"data": {"text/plain": "<Image>", "image/png": "' + image + b'"}, "metadata": {}}')
    tracemalloc.start()
    try:
        value = jsonbytes.loads(content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value["data"]["image/png"] == image.decode()
    assert peak < 1.1 * len(image)  # json.loads of the text: the text and the value, 2x
