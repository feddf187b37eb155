"""``%remote --help`` and each subcommand's help: grouped by task, wrapped between words to a
terminal's width and not at all in a notebook, the ``%%remote`` usage made from its parser, and
"did you mean" for misspelt names."""

from __future__ import annotations

import re

import pytest
from test_magics_kernel import execute_notebook

from remote_magic.commands import (
    COMMANDS,
    GROUPS,
    ArgumentParser,
    command,
    load_all,
    overview,
)
from remote_magic.errors import UsageError
from remote_magic.magics import CELL_PARSER


def headings(text: str) -> list[str]:
    return [line[:-1] for line in text.splitlines() if re.fullmatch(r"[A-Z][\w &]*:", line)]


def test_subcommands_are_grouped_by_task_in_a_fixed_order():
    load_all()
    text = overview(CELL_PARSER).text
    assert headings(text) == ["Connect", "Run", "Variables", "Files", "Kernels & sessions", "Servers"]
    connect_part = text.split("Connect:")[1].split("Run:")[0]
    assert "  disconnect " in connect_part and "  launch " in connect_part
    assert "  download " in text.split("Files:")[1].split("Kernels & sessions:")[0]
    assert "  shutdown-server " in text.split("Servers:")[1]


def test_a_group_added_later_is_placed_and_an_unknown_one_still_shown(monkeypatch):
    load_all()
    monkeypatch.setattr("remote_magic.commands.COMMANDS", dict(COMMANDS))
    monkeypatch.setattr("remote_magic.commands.GROUPS", GROUPS + ["experiments"])
    command("zap", "Zap it.", group="variables")(lambda context, options: None)
    command("probe", "Probe it.", group="experiments")(lambda context, options: None)
    command("mystery", "No group named.")(lambda context, options: None)
    text = overview(CELL_PARSER).text
    assert headings(text) == ["Connect", "Run", "Variables", "Files", "Kernels & sessions", "Servers", "Experiments", "Other"]
    assert "  mystery " in text.split("Other:")[1]


def test_the_cell_usage_line_is_made_from_the_cell_parser():
    load_all()
    assert "%%remote [-c NAME] [--kernel ID|SPEC] [--timeout SECONDS] [--no-raise]" in overview(CELL_PARSER).text
    parser = ArgumentParser(prog="%%remote")
    parser.add_argument("--bg", action="store_true")
    assert "%%remote [--bg]    the cell" in overview(parser).text


def test_help_wraps_between_words_to_the_terminal_width(remote_shell, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    remote_shell.run_line_magic("remote", "--help")
    remote_shell.run_line_magic("remote", "upload --help")
    text = capsys.readouterr().out
    assert "[--no-raise]" in text
    assert max(len(line) for line in text.splitlines()) <= 60
    words = set(text.split())
    load_all()
    for cmd in COMMANDS.values():  # every word of every summary is whole
        assert set(cmd.summary.split()) <= words, cmd.name
    assert {"renamed", "into", "place", "only", "once", "complete."} <= words  # upload's epilog


def test_in_a_notebook_help_is_not_wrapped_and_wraps_between_words_in_html(tmp_path):
    notebook = execute_notebook(["%load_ext remote_magic\n%remote --help", "%remote upload --help"], tmp_path)
    overview_output, upload_output = notebook.cells[0].outputs[0], notebook.cells[1].outputs[0]
    load_all()
    plain = overview_output["data"]["text/plain"]
    for cmd in COMMANDS.values():
        assert f"{cmd.summary}\n" in plain + "\n", f"{cmd.name}'s summary was wrapped"
    markup = overview_output["data"]["text/html"]
    assert "class='rm-help'" in markup and "word-break:normal" in markup
    assert "<td style='" in markup and ">upload</code>" in markup
    upload = upload_output["data"]["text/plain"]
    epilog = COMMANDS["upload"].parser.epilog
    assert epilog in upload.splitlines(), "the epilog was wrapped"
    assert "word-break:normal" in upload_output["data"]["text/html"]


@pytest.mark.parametrize(
    "line, hint",
    [
        ("uplod x", "unknown subcommand 'uplod' (did you mean `upload`?)"),
        ("kernel", "(did you mean `kernels`?)"),
        ("ls --trough-kernel", "unrecognized arguments: --trough-kernel (did you mean `--through-kernel`?)"),
        ("upload a --forse", "(did you mean `--force`?)"),
    ],
)
def test_a_misspelt_name_gets_the_closest_one(shell, line, hint):
    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("remote", line)
    assert hint in str(raised.value) and "\n" not in str(raised.value)


def test_nothing_is_suggested_when_nothing_is_close(shell):
    with pytest.raises(UsageError) as raised:
        shell.run_line_magic("remote", "xyzzy")
    assert "did you mean" not in str(raised.value)


def test_a_misspelt_cell_option_gets_the_closest_one(shell):
    with pytest.raises(UsageError, match=r"--no-rase \(did you mean `--no-raise`\?\)"):
        shell.run_cell_magic("remote", "--no-rase", "1")
