"""Listings that are data first: a list of dicts that shows as an HTML table or aligned text."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Sequence
from typing import Any

Row = dict[str, Any]
Formatter = Callable[[Any], str]


#: Control characters (newlines, tabs, terminal escapes) as ``\x1b``-style text: one cell, one line.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def human_size(size: Any) -> str:
    """``1023 B``, ``1.5 KB``, ``1.2 MB`` … ``3.0 TB`` (binary units); blank for None (directories)."""
    if size is None:
        return ""
    value = float(size)
    if value < 1024:
        return f"{int(value)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if round(value, 1) < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def short_time(stamp: Any) -> str:
    """``2024-01-19 06:01:01`` from an ISO-8601 server timestamp."""
    if not stamp:
        return ""
    return str(stamp).replace("T", " ")[:19]


class Table(Sequence[Row]):
    """Rows (dicts) with chosen columns. Index it, iterate it, or ``.rows`` for the list."""

    def __init__(
        self,
        rows: list[Row],
        columns: Sequence[str],
        *,
        title: str = "",
        formatters: dict[str, Formatter] | None = None,
        empty: str = "(nothing)",
    ):
        self.rows = rows
        self.columns = list(columns)
        self.title = title
        self.formatters = formatters or {}
        self.empty = empty

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):  # type: ignore[override]
        return self.rows[index]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __eq__(self, other: object) -> bool:
        return list(self.rows) == list(other) if isinstance(other, (list, Table)) else NotImplemented

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    def _cells(self) -> list[list[str]]:
        return [[self.formatters.get(c, _plain)(row.get(c)) for c in self.columns] for row in self.rows]

    def __repr__(self) -> str:
        if not self.rows:
            return f"{self.title}\n{self.empty}" if self.title else self.empty
        cells = [[value.translate(_CONTROL) for value in row] for row in self._cells()]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(self.columns)]
        lines = [self.title.translate(_CONTROL)] if self.title else []
        lines.append("  ".join(c.upper().ljust(w) for c, w in zip(self.columns, widths)).rstrip())
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        caption = f"<caption style='text-align:left'>{html.escape(self.title)}</caption>" if self.title else ""
        if not self.rows:
            return f"<table>{caption}<tr><td><i>{html.escape(self.empty)}</i></td></tr></table>"
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(v)}</td>" for v in r) + "</tr>"
            for r in self._cells()
        )
        return f"<table class='remote-magic-table'>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
