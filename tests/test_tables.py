"""Tables: values formatted for people, and names from the server escaped in HTML and kept to one
line in text, checked on listings of a real Jupyter Server."""

from __future__ import annotations

import re

import pytest
from test_files import remote

from remote_magic.tables import Table, human_size, short_time

HOSTILE = "<script>alert('x')</script>&amp; <b>.ipynb"  # a name a colleague could give a notebook
HOSTILE_FILE = "<img src=x onerror=alert(1)>&co.txt"  # no "/": it is one file name


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (None, ""),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (1024 * 1024 - 1, "1.0 MB"),  # not "1024.0 KB"
        (5 * 1024**3, "5.0 GB"),
        (3 * 1024**4, "3.0 TB"),
    ],
)
def test_sizes_read_as_binary_units(size, shown):
    assert human_size(size) == shown


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        ("2024-01-19T06:01:01.123456Z", "2024-01-19 06:01:01"),
        ("2024-01-19T06:01:01+00:00", "2024-01-19 06:01:01"),
        (None, ""),
        ("", ""),
    ],
)
def test_times_read_to_the_second(stamp, shown):
    assert short_time(stamp) == shown


def test_a_table_formats_its_cells_and_shows_none_as_blank():
    rows = [{"name": "a.txt", "size": 2048, "when": "2024-01-19T06:01:01Z", "extra": "hidden"}, {"name": "dir/", "size": None, "when": None}]
    table = Table(rows, ["name", "size", "when"], title="Files", formatters={"size": human_size, "when": short_time})
    assert repr(table).splitlines() == [
        "Files",
        "NAME   SIZE    WHEN",
        "a.txt  2.0 KB  2024-01-19 06:01:01",
        "dir/",
    ]
    shown = table._repr_html_()
    assert "<td style='text-align:left'>2.0 KB</td>" in shown and "hidden" not in shown
    assert "<td style='text-align:left'></td>" in shown and "None" not in shown
    assert table == rows and table[1]["size"] is None and table.column("name") == ["a.txt", "dir/"]
    assert repr(Table([], ["name"], title="Files", empty="(empty)")) == "Files\n(empty)"


def test_control_characters_stay_on_one_line_in_text():
    table = Table([{"name": "a\nb\x1b[2Jc\t.txt", "n": 1}], ["name", "n"])
    assert repr(table).splitlines() == ["NAME" + " " * 20 + "N", "a\\x0ab\\x1b[2Jc\\x09.txt  1"]


def test_a_hostile_file_name_is_escaped_in_the_html_listing(remote_shell, server, remote_dir):
    server.contents.write_text(f"{remote_dir}/{HOSTILE_FILE}", "x")
    table = remote(remote_shell, f"ls {remote_dir}")
    assert table.column("name") == [HOSTILE_FILE]
    shown = table._repr_html_()
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;co.txt" in shown and "<img" not in shown
    assert HOSTILE_FILE in repr(table)  # text needs no escaping


def test_a_hostile_session_path_is_escaped_in_the_html_listings(remote_shell, colleague):
    colleague(f"team/{HOSTILE}", kernel_name="python3")
    for listing in ("sessions", "kernels"):
        shown = remote(remote_shell, listing)._repr_html_()
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;amp; &lt;b&gt;.ipynb" in shown, listing
        assert "<script>" not in shown and "<b>" not in shown, listing


def test_ls_shows_sizes_and_times_for_people(remote_shell, server, remote_dir):
    server.contents.write_text(f"{remote_dir}/data.txt", "x" * 1536)
    server.contents.mkdir(f"{remote_dir}/sub")
    table = remote(remote_shell, f"ls {remote_dir}")
    assert table.column("name") == ["sub/", "data.txt"] and table.column("size") == [None, 1536]  # data stays raw
    lines = repr(table).splitlines()
    assert re.fullmatch(r"sub/\s+directory\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[2])
    assert re.fullmatch(r"data\.txt\s+file\s+1\.5 KB\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[3])
    assert "<td style='text-align:left'>1.5 KB</td>" in table._repr_html_()
