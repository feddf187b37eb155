"""JupyterHub natively, against a real hub on 127.0.0.1 (configurable-http-proxy from npm, the
simple local spawner, the dummy authenticator): find the token's user, start their server with its
progress shown, connect to it with the token in the Authorization header only."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hubserver import JupyterHub, missing_component
from servers import execute_cells, exercise, missing

import remote_magic
from remote_magic.errors import (
    AuthenticationError,
    ExecutionTimeout,
    RemoteExecutionError,
    UsageError,
)
from remote_magic.hub import hub_prefix, user_server_url


@pytest.fixture(scope="module")
def hub():
    reason = missing_component()
    if reason:
        missing(f"JupyterHub tests cannot run: {reason}")
    started = JupyterHub()
    yield started
    started.stop()


@pytest.fixture
def user(hub, monkeypatch):
    """A new hub user with no server yet; their API token is in $HUB_TOKEN."""
    name = f"u{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("HUB_TOKEN", hub.user_token(name))
    yield name
    hub.stop_server(name)


def test_connect_from_the_root_starts_the_server_runs_cells_and_reconnects(hub, user, shell, capsys):
    assert not hub.server_ready(user)
    shell.run_line_magic("remote", f"connect {hub.url} --token-env HUB_TOKEN --name hub")
    out = capsys.readouterr()
    assert "JupyterHub: 0% Server requested" in out.err
    assert f"JupyterHub: 100% Server ready at /user/{user}/" in out.err
    assert out.out.startswith(f"Connected 'hub': {hub.url}user/{user}/ (JupyterHub single-user server ")
    assert f"user {user}," in out.out
    assert hub.server_ready(user)
    connection = remote_magic.registry.get("hub")
    assert os.environ["HUB_TOKEN"] not in str(connection.server.url)

    result = shell.run_cell("%%remote\nimport os\nprint('on', os.environ['JUPYTERHUB_USER'])\n6 * 7")
    assert result.success and repr(result.result) == "42"
    assert f"on {user}\n" in capsys.readouterr().out
    failed = shell.run_cell("%%remote\n1 / 0")
    assert isinstance(failed.error_in_exec, RemoteExecutionError)
    assert failed.error_in_exec.ename == "ZeroDivisionError"

    table = shell.run_line_magic("remote", "ls")
    assert table.title == f"{hub.url}user/{user}/"
    shell.run_line_magic("remote", "disconnect")
    assert "Disconnected 'hub'" in capsys.readouterr().out

    # The server runs: connecting again (from a hub page's URL) re-uses it, with no spawn at all.
    shell.run_line_magic("remote", f"connect {hub.url}hub/home --token-env HUB_TOKEN --name again")
    out = capsys.readouterr()
    assert "JupyterHub" not in out.err
    assert out.out.startswith(f"Connected 'again': {hub.url}user/{user}/ ")
    assert shell.run_cell("%%remote\n1 + 1").result.data == {"text/plain": "2"}


def test_what_a_user_does_on_a_hub_server(hub, user, shell, capsys):
    home = Path(hub.state) / "home" / user
    home.mkdir(parents=True, exist_ok=True)
    (home / "hello.txt").write_text("hello from the server\n")
    line = exercise(shell, capsys, f"{hub.url} --token-env HUB_TOKEN", offers={"contents": True, "sessions": True})
    assert "JupyterHub single-user server" in line


def test_named_server(hub, user, shell, capsys):
    shell.run_line_magic("remote", f"connect {hub.url}hub/ --token-env HUB_TOKEN --server second --name two")
    out = capsys.readouterr()
    assert f"Server ready at /user/{user}/second/" in out.err
    assert out.out.startswith(f"Connected 'two': {hub.url}user/{user}/second/ ")
    result = shell.run_cell("%%remote\nimport os\nos.environ['JUPYTERHUB_SERVER_NAME']")
    assert result.result.data == {"text/plain": "'second'"}
    assert not hub.server_ready(user)  # the default server was left alone
    hub.stop_server(user, "second")


def test_wrong_token_is_one_line_and_registers_nothing(hub, shell, monkeypatch):
    monkeypatch.setenv("HUB_TOKEN", "not-a-hub-token")
    with pytest.raises(AuthenticationError) as info:
        shell.run_line_magic("remote", f"connect {hub.url} --token-env HUB_TOKEN")
    message = str(info.value)
    assert "\n" not in message and "not-a-hub-token" not in message
    assert "JupyterHub" in message and "hub/token" in message
    assert len(remote_magic.registry) == 0


def test_a_slow_spawn_is_bounded_by_the_timeout(hub, user):
    with pytest.raises(ExecutionTimeout, match="did not start"):
        user_server_url(hub.url, os.environ["HUB_TOKEN"], timeout=0.0)


def test_a_plain_server_is_not_taken_for_a_hub(jupyter_server):
    assert user_server_url(jupyter_server.url, jupyter_server.token) is None
    with pytest.raises(UsageError, match="--server is for JupyterHub"):
        user_server_url(jupyter_server.url, jupyter_server.token, server="x")


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("https://hub.example.org/hub/", "https://hub.example.org/hub/"),
        ("https://hub.example.org/hub/home", "https://hub.example.org/hub/"),
        ("https://example.org/jupyter/hub/spawn?x=1", "https://example.org/jupyter/hub/"),
        ("https://hub.example.org/", None),  # a root URL: the hub answers for itself
        ("https://hub.example.org/user/alice/", None),
        ("https://hub.example.org/user/alice/hub/", None),  # a named server called "hub"
        ("https://hub.example.org/hub/data/", None),
    ],
)
def test_hub_urls(url, prefix):
    found = hub_prefix(url)
    assert (str(found) if found else None) == prefix


def test_a_notebook_connects_through_the_hub(hub, user, tmp_path):
    """What a user runs: a notebook executed by nbclient in a real local kernel."""
    import nbformat

    cells = [
        f"%load_ext remote_magic\n%remote connect {hub.url} --token-env HUB_TOKEN --name nbhub",
        "%%remote\nimport os\nprint('remote user', os.environ['JUPYTERHUB_USER'])",
        "%%remote\nraise KeyError('absent')",
        "%remote disconnect nbhub",
    ]
    notebook = execute_cells(cells, tmp_path, allow_errors=True)
    streams = {o["name"]: o["text"] for o in notebook.cells[0].outputs if o["output_type"] == "stream"}
    assert "stderr" not in streams, "the spawn progress left a stderr box"
    progress = [o for o in notebook.cells[0].outputs if o["output_type"] == "display_data"]
    assert len(progress) == 1, "the spawn progress is one display, updated in place"
    assert progress[0]["data"]["text/plain"] == f"JupyterHub: 100% Server ready at /user/{user}/"
    assert streams["stdout"].startswith(f"Connected 'nbhub': {hub.url}user/{user}/")
    assert notebook.cells[1].outputs == [{"output_type": "stream", "name": "stdout", "text": f"remote user {user}\n"}]
    error = notebook.cells[2].outputs[-1]
    assert (error["output_type"], error["ename"]) == ("error", "KeyError")
    assert "Disconnected 'nbhub'" in notebook.cells[3].outputs[0]["text"]
    assert os.environ["HUB_TOKEN"] not in nbformat.writes(notebook)
