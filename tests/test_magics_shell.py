"""The magics through a real InteractiveShell against a real Jupyter Server."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher

import remote_magic
from remote_magic.errors import (
    ConnectionNotFound,
    ExecutionTimeout,
    RemoteExecutionError,
    UsageError,
)
from remote_magic.tables import Table


@pytest.fixture
def ip(remote_shell):
    """The connected shell of conftest; the magic's settings are put back afterwards."""
    yield remote_shell
    magic = remote_shell.magics_manager.registry["RemoteMagic"]
    magic.raise_on_error, magic.timeout = True, None


@pytest.fixture
def captured(ip):
    """Record what the shell publishes (data, metadata, transient, update) instead of printing it."""
    original = ip.display_pub
    ip.display_pub = CapturingDisplayPublisher()
    yield ip.display_pub.outputs
    ip.display_pub = original


def run(ip, cell):
    return ip.run_cell(cell)


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_connect_prints_one_line_without_the_token(jupyter_server, ip, capsys):
    ip.run_line_magic("remote", f"connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name second")
    out = capsys.readouterr()
    line = out.out.strip()
    assert "\n" not in line
    assert line.startswith("Connected 'second': " + jupyter_server.url)
    assert "Jupyter Server 2." in line and "user " in line and "kernel" in line
    assert jupyter_server.token not in out.out + out.err
    assert remote_magic.registry.current.name == "second"


def test_connect_with_token_in_url_strips_and_scrubs_history(jupyter_server, ip, capsys):
    result = ip.run_cell(f"%remote connect {jupyter_server.url}?token={jupyter_server.token} --name viaurl", store_history=True)
    assert result.success, result.error_in_exec
    out = capsys.readouterr()
    assert "Connected 'viaurl'" in out.out
    assert jupyter_server.token not in out.out + out.err
    history = ip.history_manager
    assert not any(jupyter_server.token in text for text in history.input_hist_raw + history.input_hist_parsed)
    history.writeout_cache()
    with sqlite3.connect(str(history.hist_file)) as db:
        rows = db.execute("SELECT source, source_raw FROM history").fetchall()
    assert any("connect" in raw for _, raw in rows)
    assert not any(jupyter_server.token in src + raw for src, raw in rows)
    assert jupyter_server.token not in repr(remote_magic.registry) + repr(remote_magic.registry.get("viaurl"))


def history_texts(ip) -> str:
    """Everything this session's IPython history holds: In, _ih, _i*, the cache and the database."""
    history = ip.history_manager
    history.writeout_cache()
    with sqlite3.connect(str(history.hist_file)) as db:
        rows = db.execute("SELECT source, source_raw FROM history WHERE session = ?", (history.session_number,)).fetchall()
    names = [value for name, value in ip.user_ns.items() if re.fullmatch(r"_i(i{0,2}|\d+)", name)]
    return repr([rows, ip.user_ns["In"], ip.user_ns["_ih"], history.input_hist_raw, names, history.db_input_cache])


@pytest.mark.parametrize("saved", [False, True], ids=["pending", "saved"])
@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://[::1/", "http://127.0.0.1:99999/", "http://127.0.0.1:{port}/"])
def test_a_failed_connect_leaves_no_token_in_history(shell, url, saved):
    from remote_magic.launch import free_port

    secret = "histsecret" + "0b1c" * 6
    cell = f"%remote connect {url.format(port=free_port())}lab?token={secret}&x=1 --name failing"
    if saved:  # the cell is in the history database before the magic runs (the saving thread was quick)
        cell = "get_ipython().history_manager.writeout_cache()\n" + cell
    result = shell.run_cell(cell, store_history=True)
    assert isinstance(result.error_in_exec, remote_magic.RemoteMagicError)
    stored = history_texts(shell)
    assert "--name failing" in stored, "the cell is kept in history, with the token masked"
    assert secret not in stored


def test_same_name_connect_replaces_cleanly(jupyter_server, ip, server):
    ip.run_cell("%%remote\nmarker = 1")
    first = remote_magic.registry.get("test").kernel.id
    ip.run_line_magic("remote", f"connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name test")
    assert len(remote_magic.registry) == 1
    assert first not in {k["id"] for k in server.kernels.list()}, "the replaced connection's kernel was left running"


def test_cell_runs_remotely_keeps_state_and_returns_the_result(ip, capsys):
    assert run(ip, "%%remote\nimport os\nx = 20\nprint('pid', os.getpid())").success
    out = capsys.readouterr().out
    remote_pid = int(out.split("pid", 1)[1].split()[0])
    import os

    assert remote_pid != os.getpid()
    result = run(ip, "%%remote\nx * 2 + 2")
    assert result.success
    assert repr(result.result) == "42"
    assert result.result.data == {"text/plain": "42"}


def test_remote_error_fails_the_cell_with_the_remote_name_and_traceback(ip, capsys):
    result = run(ip, "%%remote\ndef f():\n    return 1 / 0\nf()")
    assert not result.success
    error = result.error_in_exec
    assert type(error).__name__ == "ZeroDivisionError"
    assert isinstance(error, RemoteExecutionError)
    assert error.ename == "ZeroDivisionError" and "division by zero" in error.evalue
    shown = strip_ansi(capsys.readouterr().out)
    assert "return 1 / 0" in shown and "ZeroDivisionError: division by zero" in shown
    assert "remote_magic" not in shown, "a local traceback from inside the package was shown"


def test_no_raise_shows_the_error_without_failing(ip, capsys):
    result = run(ip, "%%remote --no-raise\nraise ValueError('shown only')")
    assert result.success
    assert "ValueError" in capsys.readouterr().err
    ip.run_line_magic("config", "RemoteMagic.raise_on_error = False")
    assert run(ip, "%%remote\nraise KeyError('also shown')").success


def test_timeout_interrupts_the_remote_kernel_and_keeps_it(ip, capsys, wait_until):
    result = run(ip, "%%remote --timeout 1\nimport time\nprint('before', flush=True)\ntime.sleep(60)")
    assert isinstance(result.error_in_exec, ExecutionTimeout)
    shown = capsys.readouterr()
    assert "before" in shown.out
    # The remote cell really was interrupted: it ended with KeyboardInterrupt, shown, and the kernel is free.
    assert "KeyboardInterrupt" in strip_ansi(shown.err)
    kernel = remote_magic.registry.current.kernel
    wait_until(lambda: kernel.model()["execution_state"] == "idle", timeout=20, message="the interrupted kernel")
    after = run(ip, "%%remote --timeout 20\n'still alive'")  # a kernel still sleeping fails this
    assert after.success and repr(after.result) == "'still alive'"


def test_a_local_input_that_fails_interrupts_the_remote_kernel(ip, capsys):
    # In this shell input() cannot read (pytest holds stdin): the remote input() must not wait forever.
    result = run(ip, "%%remote --timeout 30\nname = input('Name? ')\nprint('ne' + 'ver')")
    error = result.error_in_exec
    assert isinstance(error, RemoteExecutionError) and error.ename == "KeyboardInterrupt", error
    shown = capsys.readouterr()
    assert "interrupting the remote kernel" in shown.err and "never" not in shown.out
    assert run(ip, "%%remote --timeout 20\n'next cell runs'").success


def test_configured_timeout_applies(ip):
    ip.run_line_magic("config", "RemoteMagic.timeout = 1.0")
    result = run(ip, "%%remote\nimport time\ntime.sleep(60)")
    assert isinstance(result.error_in_exec, ExecutionTimeout)


def test_local_braces_and_dollars_are_not_expanded(ip):
    ip.user_ns["y"] = "LOCAL"
    result = run(ip, "%%remote\ns = '{y} $y'\ns")
    assert repr(result.result) == "'{y} $y'"


def test_displays_updates_and_clears_arrive_with_their_metadata(ip, captured):
    code = (
        "%%remote\n"
        "from IPython.display import display, HTML, clear_output\n"
        "display(HTML('<b>bold</b>'), metadata={'isolated': True})\n"
        "h = display('first', display_id='disp-1')\n"
        "h.update('second')\n"
    )
    assert run(ip, code).success
    html = [o for o in captured if "text/html" in o["data"]]
    assert html[0]["data"]["text/html"] == "<b>bold</b>"
    assert html[0]["metadata"] == {"isolated": True}
    first, update = [o for o in captured if (o["transient"] or {}).get("display_id") == "disp-1"]
    assert first["data"]["text/plain"] == "'first'" and not first["update"]
    assert update["data"]["text/plain"] == "'second'" and update["update"]
    assert run(ip, "%%remote\nfrom IPython.display import clear_output\nclear_output()").success
    assert captured == []


def test_help_and_usage_errors(ip, capsys):
    ip.run_line_magic("remote", "--help")
    overview = capsys.readouterr().out
    for name in ("connect", "connections", "use", "disconnect", "ls"):
        assert f"  {name}" in overview
    ip.run_line_magic("remote", "ls --help")
    assert "usage: %remote ls" in capsys.readouterr().out
    ip.run_cell_magic("remote", "--help", "print('not run')")
    assert "usage: %%remote" in capsys.readouterr().out
    with pytest.raises(UsageError, match="unknown subcommand 'frobnicate'"):
        ip.run_line_magic("remote", "frobnicate")
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus") as info:
        ip.run_line_magic("remote", "ls --bogus")
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match="--timeout: invalid float value"):
        ip.run_cell_magic("remote", "--timeout soon", "pass")


def test_connections_use_and_disconnect(jupyter_server, ip, server, capsys):
    ip.run_line_magic("remote", f"connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name other")
    table = ip.run_line_magic("remote", "connections")
    assert isinstance(table, Table)
    assert {row["name"]: row["current"] for row in table} == {"test": "", "other": "*"}
    ip.run_line_magic("remote", "use test")
    assert remote_magic.registry.current.name == "test"
    run(ip, "%%remote -c other\nz = 5")
    kernel_id = remote_magic.registry.get("other").kernel.id
    assert run(ip, "%%remote --conn other\nz").result.data["text/plain"] == "5"
    ip.run_line_magic("remote", "disconnect other")
    assert "stopped 1 kernel" in capsys.readouterr().out
    assert kernel_id not in {k["id"] for k in server.kernels.list()}
    with pytest.raises(ConnectionNotFound, match="No connection named 'other'"):
        ip.run_line_magic("remote", "use other")


def test_ls_lists_like_ls_and_is_data(jupyter_server, ip, server):
    root = jupyter_server.root_dir
    import os

    os.makedirs(os.path.join(root, "lsdir", "sub"), exist_ok=True)
    with open(os.path.join(root, "lsdir", "data.txt"), "w") as handle:
        handle.write("x" * 2048)
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    with open(os.path.join(root, "lsdir", "open.ipynb"), "w") as handle:
        json.dump(notebook, handle)
    session = server.sessions.create("lsdir/open.ipynb", kernel_name="python3")
    try:
        table = ip.run_line_magic("remote", "ls lsdir")
        assert [row["name"] for row in table] == ["sub/", "data.txt", "open.ipynb"]
        rows = {row["name"]: row for row in table}
        assert rows["data.txt"]["size"] == 2048 and rows["data.txt"]["type"] == "file"
        assert rows["open.ipynb"]["kernel"] in ("starting", "idle", "busy")
        assert rows["data.txt"]["kernel"] is None
        text = repr(table)
        assert text.splitlines()[1].split() == ["NAME", "TYPE", "SIZE", "MODIFIED", "KERNEL"]
        assert "2.0 KB" in text
        html = table._repr_html_()
        assert "<table" in html and "<td style='text-align:left'>open.ipynb</td>" in html
    finally:
        server.sessions.delete(session["id"])


def test_settings_come_from_an_ipython_config_file(tmp_path):
    import subprocess
    import sys

    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text("c.RemoteMagic.timeout = 7.5\nc.RemoteMagic.raise_on_error = False\n")
    code = (
        "get_ipython().run_line_magic('load_ext', 'remote_magic'); "
        "m = get_ipython().magics_manager.registry['RemoteMagic']; print('SETTINGS', m.timeout, m.raise_on_error)"
    )
    out = subprocess.run(
        [sys.executable, "-m", "IPython", f"--ipython-dir={tmp_path}", "--no-banner", "-c", code],
        capture_output=True, text=True, timeout=60,
    )
    assert "SETTINGS 7.5 False" in out.stdout, out.stderr


def test_help_works_as_the_first_call_of_a_process():
    import subprocess
    import sys

    code = (
        "from IPython.core.interactiveshell import InteractiveShell; ip = InteractiveShell.instance(); "
        "ip.run_line_magic('load_ext', 'remote_magic'); ip.run_line_magic('remote', '--help')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "  connect" in out.stdout and "  kernels" in out.stdout and "  cat" in out.stdout
