"""Finding the servers running on this machine from their runtime files, and connecting without a URL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher

import remote_magic
from remote_magic.discovery import (
    ServerInfo,
    _fallback_runtime_dir,
    find_running,
    running_servers,
    runtime_dir,
)
from remote_magic.errors import AuthenticationError, UsageError
from remote_magic.launch import LaunchedServer


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Two servers started by this module, each writing its runtime file into a directory of its own."""
    servers = []
    for number in range(2):
        runtime = tmp_path_factory.mktemp(f"runtime{number}")
        root = tmp_path_factory.mktemp(f"root{number}")
        servers.append(LaunchedServer(str(root), env={"JUPYTER_RUNTIME_DIR": str(runtime)}))
        servers[-1].runtime_file = runtime / f"jpserver-{servers[-1].pid}.json"
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """This test's runtime directory (JUPYTER_RUNTIME_DIR), empty at first."""
    folder = tmp_path / "runtime"
    folder.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(folder))
    return folder


@pytest.fixture
def started(runtime, launched):
    """``started()`` makes one more of the module's servers visible in this test's runtime directory."""
    visible: list[LaunchedServer] = []

    def start() -> LaunchedServer:
        server = launched[len(visible)]
        shutil.copy(server.runtime_file, runtime / server.runtime_file.name)
        visible.append(server)
        return server

    return start


def test_finds_a_server_started_by_the_test_without_showing_its_token(started, runtime):
    launched = started()
    [info] = running_servers()
    assert info.pid == launched.pid and info.url == launched.url
    assert info.root_dir == launched.root_dir and info.version.startswith("2.")
    assert info.token == launched.token  # kept to connect with...
    assert launched.token not in repr(info)  # ...and never shown
    assert runtime_dir() == runtime
    assert find_running(f"http://localhost:{launched.port}/lab/tree/x.ipynb") == info
    assert find_running(f"http://127.0.0.1:{launched.port}/other-base/") is None
    assert find_running(f"https://127.0.0.1:{launched.port}/") is None


def test_stale_and_half_written_runtime_files_are_skipped(started, runtime):
    launched = started()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    stale = json.loads((runtime / f"jpserver-{launched.pid}.json").read_text())
    (runtime / f"jpserver-{dead_pid}.json").write_text(json.dumps({**stale, "pid": dead_pid, "port": 1}))
    (runtime / "jpserver-99999999.json").write_text('{"port": ')
    (runtime / "jpserver-1.json").write_text(json.dumps({**stale, "pid": launched.pid, "sock": "/tmp/jupyter.sock"}))
    assert [info.pid for info in running_servers()] == [launched.pid]


def test_fallback_runtime_dir_without_jupyter_core(monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
    assert _fallback_runtime_dir() == tmp_path / "rt"
    monkeypatch.delenv("JUPYTER_RUNTIME_DIR")
    monkeypatch.delenv("JUPYTER_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert _fallback_runtime_dir() == tmp_path / ".local" / "share" / "jupyter" / "runtime"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert _fallback_runtime_dir() == tmp_path / "data" / "runtime"


def test_connect_without_url_joins_the_only_local_server(shell, started, capsys):
    launched = started()
    shell.run_line_magic("remote", "connect --name here")
    out = capsys.readouterr()
    assert out.out.startswith(f"Connected 'here': {launched.url}")
    assert launched.token not in out.out + out.err
    assert remote_magic.registry.current.run("21 * 2").result["text/plain"] == "42"


def test_connect_without_url_shows_the_choice_when_several_run(shell, started):
    first, second = started(), started()
    captured = CapturingDisplayPublisher()
    shell.display_pub, original = captured, shell.display_pub
    try:
        with pytest.raises(UsageError, match="2 Jupyter servers run on this machine .* %remote connect URL"):
            shell.run_line_magic("remote", "connect")
    finally:
        shell.display_pub = original
    [shown] = captured.outputs
    text = shown["data"]["text/plain"] + shown["data"]["text/html"]
    assert first.url in text and second.url in text and str(second.pid) in text
    assert first.token not in text and second.token not in text
    # Picking one by URL needs no token: it is read from that server's runtime file.
    shell.run_line_magic("remote", f"connect http://localhost:{second.port}/ --name second")
    table = shell.run_line_magic("remote", "servers")
    assert [(row["pid"], row["connection"]) for row in table] == [(first.pid, None), (second.pid, "second")]
    assert [row["root_dir"] for row in table] == [first.root_dir, second.root_dir]
    assert first.token not in repr(table) + table._repr_html_()


def test_environment_variables_come_first(shell, started, monkeypatch, capsys):
    started()  # a local server that must not be chosen
    second = started()
    monkeypatch.setenv("JUPYTER_SERVER_URL", second.url)
    monkeypatch.setenv("JUPYTER_TOKEN", second.token)
    shell.run_line_magic("remote", "connect")
    assert capsys.readouterr().out.startswith(f"Connected 'local': {second.url}")
    monkeypatch.setenv("JUPYTER_SERVER_URL", "http://127.0.0.1:1/")  # nothing listens there
    with pytest.raises(remote_magic.ServerUnreachable):
        shell.run_line_magic("remote", "connect --name nowhere")


def test_no_local_server_says_what_to_do(shell, runtime):
    with pytest.raises(UsageError, match="no Jupyter server runs on this machine; give a URL, or start one with %remote launch"):
        shell.run_line_magic("remote", "connect")
    assert "(no running Jupyter server found" in repr(shell.run_line_magic("remote", "servers"))


def test_an_explicit_token_is_not_replaced_by_the_runtime_file(shell, started, monkeypatch):
    launched = started()
    monkeypatch.setenv("WRONG_TOKEN", "not-the-token")
    with pytest.raises(AuthenticationError):
        shell.run_line_magic("remote", f"connect {launched.url} --token-env WRONG_TOKEN")


def test_server_info_matches_loopback_spellings():
    info = ServerInfo("http://localhost:8888/base/", "/r", 1, "2.0", False, "", "f", token="t")
    assert info.matches("127.0.0.1:8888/base/lab")
    assert info.matches("http://[::1]:8888/base")
    assert not info.matches("http://localhost:8888/")
    assert not info.matches("http://localhost:8889/base/")
    assert not info.matches("http://example.org:8888/base/")
