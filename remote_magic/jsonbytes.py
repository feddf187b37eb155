"""JSON from received UTF-8 bytes, exactly as :func:`json.loads` reads their text, without a copy
of the whole text when long string literals make up most of it (a base64 image, say).

``json`` parses text: for a 27 MB part it needs the bytes, their text and the parsed value at
once. Here each long literal free of escapes and control characters is decoded straight from the
bytes instead, and only the rest, a skeleton in which each of them stands as the constant ``NaN``,
becomes text; :mod:`json` parses it, and its ``parse_constant`` hook puts the strings back in
document order (keys stay in the skeleton). Whatever this cannot settle (a skeleton with a
``NaN`` of its own, any invalid input) is parsed whole, so the value, or the error, is json's own.
Stdlib only, no sockets.
"""

from __future__ import annotations

import json
from typing import Any

#: Parts smaller than this are parsed whole: a copy of their text costs little.
LARGE = 2**20
#: Literals are looked for by windows of this many bytes without a quote or a backslash: every
#: plain literal of at least twice this length holds one.
WINDOW = 8 * 1024

_QUOTE, _BACKSLASH, _ESCAPED_QUOTE = b'"', b"\\", b'\\"'
_BLANKS = b" \t\n\r"
#: An escape, and the control characters JSON does not allow unescaped in a string.
_NOT_PLAIN = [_BACKSLASH, *(bytes([code]) for code in range(0x20))]
#: Bytes looked through for all of those at a time (while they are in the CPU cache: twice as fast).
_SCAN = 256 * 1024
_PLACEHOLDER = b"NaN"

_loads = json.JSONDecoder().decode


def loads(buffer: bytes | bytearray, start: int = 0, end: int | None = None) -> Any:
    """The JSON value of ``buffer[start:end]``; raises what ``json.loads`` of its UTF-8 text
    raises (UnicodeDecodeError, another ValueError, RecursionError)."""
    end = len(buffer) if end is None else end
    if end - start >= LARGE:
        literals = _long_literals(buffer, start, end)
        if literals:
            try:
                return _parse_around(buffer, start, end, literals)
            except ValueError:
                pass  # parsed whole below, for json's own value or error
    return _loads(str(memoryview(buffer)[start:end], "utf-8"))


def _parse_around(buffer: bytes | bytearray, start: int, end: int, literals: list[tuple[int, int]]) -> Any:
    """Decode each literal (content bounds) from the bytes, parse the skeleton around them."""
    view = memoryview(buffer)
    pieces: list[memoryview | bytes] = []
    strings = []
    position = start
    for first, last in literals:
        strings.append(str(view[first:last], "utf-8"))
        pieces += (view[position : first - 1], _PLACEHOLDER)
        position = last + 1
    pieces.append(view[position:end])
    skeleton = b"".join(pieces)
    if skeleton.count(_PLACEHOLDER) != len(strings):
        raise ValueError("the skeleton has a NaN of its own")
    values = iter(strings)
    decoder = json.JSONDecoder(parse_constant=lambda name: next(values) if name == "NaN" else float(name))
    return decoder.decode(str(skeleton, "utf-8"))


def _long_literals(buffer: bytes | bytearray, start: int, end: int) -> list[tuple[int, int]]:
    """The content bounds of the string values in ``buffer[start:end]`` that hold a window, in
    order, leaving out those with escapes or control characters, and keys. Valid JSON is assumed:
    a wrong guess on invalid input leaves a skeleton that json refuses."""
    found = []
    outside = probe = start  # outside: a position known to be outside every literal
    while probe + WINDOW <= end:
        window_end = probe + WINDOW
        if buffer.find(_QUOTE, probe, window_end) >= 0 or buffer.find(_BACKSLASH, probe, window_end) >= 0:
            probe = window_end
            continue
        if _unescaped_quotes(buffer, start, outside, probe) % 2 == 0:
            outside = probe = window_end  # not in a literal: a long run of numbers or blanks
            continue
        opening = buffer.rfind(_QUOTE, outside, probe)
        closing = _next_unescaped_quote(buffer, start, window_end, end)
        if closing < 0:
            break  # unterminated: json says so
        plain = not _escaped(buffer, start, opening) and _plain(buffer, opening + 1, closing)
        if plain and not _key(buffer, closing + 1, end):
            found.append((opening + 1, closing))
        outside = probe = closing + 1
    return found


def _escaped(buffer: bytes | bytearray, floor: int, index: int) -> bool:
    """Whether the character at ``index`` follows an odd run of backslashes (none before ``floor``)."""
    run = index
    while run > floor and buffer[run - 1] == 0x5C:
        run -= 1
    return (index - run) % 2 == 1


def _unescaped_quotes(buffer: bytes | bytearray, floor: int, start: int, end: int) -> int:
    """How many quotes in ``buffer[start:end]`` open or close a literal (``start`` not inside an escape)."""
    count = buffer.count(_QUOTE, start, end)
    escape = buffer.find(_ESCAPED_QUOTE, start, end)
    while escape >= 0:
        count -= _escaped(buffer, floor, escape + 1)
        escape = buffer.find(_ESCAPED_QUOTE, escape + 2, end)
    return count


def _next_unescaped_quote(buffer: bytes | bytearray, floor: int, start: int, end: int) -> int:
    quote = buffer.find(_QUOTE, start, end)
    while quote >= 0 and _escaped(buffer, floor, quote):
        quote = buffer.find(_QUOTE, quote + 1, end)
    return quote


def _key(buffer: bytes | bytearray, after: int, end: int) -> bool:
    """Whether the literal that ends before ``after`` is an object's key (a colon follows it)."""
    while after < end and buffer[after] in _BLANKS:
        after += 1
    return after < end and buffer[after] == 0x3A


def _plain(buffer: bytes | bytearray, start: int, end: int) -> bool:
    """Whether ``buffer[start:end]`` holds no backslash and no control character: its UTF-8 is
    the string itself."""
    find = buffer.find
    chunks = range(start, end, _SCAN)
    return not any(find(byte, chunk, min(chunk + _SCAN, end)) >= 0 for chunk in chunks for byte in _NOT_PLAIN)
