"""jupyverse (its own venv): no /api root, the token traded for a cookie, kernels only in sessions."""

from __future__ import annotations

import pytest
from servers import (
    check_documented,
    exercise,
    jupyverse,
    new_token,
    run_in_notebook,
    server_root,
)
from test_secrets import all_logs, shows  # noqa: F401  (all_logs is a fixture)

import remote_magic
from remote_magic import Server

FULL = {"contents": True, "sessions": True, "kernel_listing": True}


@pytest.fixture(scope="module")
def verse(tmp_path_factory):
    process = jupyverse(server_root(tmp_path_factory, "jupyverse-root"), new_token())
    yield process
    process.stop()


def test_what_a_user_does_on_jupyverse(verse, shell, capsys, monkeypatch):
    monkeypatch.setenv("RM_JV_TOKEN", verse.token)
    # jupyverse stores an upload's base64 text undecoded; the check after each upload catches it
    line = exercise(shell, capsys, f"{verse.url} --token-env RM_JV_TOKEN", offers=FULL, uploads=False)
    assert "jupyverse" in line and verse.token not in line


def test_jupyverse_detected_and_documented(verse):
    server = Server(verse.url, verse.token)
    try:
        assert server.capabilities.kind == "jupyverse"
        kernel = server.start_kernel()  # jupyverse has no POST api/kernels: in a session of its own
        assert kernel.run("6 * 7").result == {"text/plain": "42"}
        assert kernel.id in {k["id"] for k in server.kernels.list()}
        check_documented("jupyverse", server, kernel.channel.protocol)
        kernel.shutdown()
    finally:
        server.close()


def test_the_token_is_in_no_log_repr_or_line(verse, all_logs, shell, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RM_JV_TOKEN", verse.token)
    shell.run_line_magic("remote", f"connect {verse.url} --token-env RM_JV_TOKEN --name jv")
    assert shell.run_cell("%%remote\n'ok'").success
    conn = remote_magic.registry.get("jv")
    cookies = [cookie.value for cookie in conn.server._rest.http.cookies]
    secrets = (verse.token, *cookies)
    shown = capsys.readouterr()
    assert cookies and not shows(shown.out + shown.err, *secrets)
    for obj in (conn, conn.server, conn.server._rest, conn.server._rest.auth, conn.kernel):
        assert not shows(repr(obj), *secrets), repr(obj)
    assert any("token=[redacted]" in text for text in all_logs.texts), "the ?token= request was not seen"
    for text in all_logs.texts:
        assert not shows(text, *secrets), text


def test_from_a_notebook(verse, tmp_path, monkeypatch):
    monkeypatch.setenv("RM_JV_TOKEN", verse.token)
    run_in_notebook(tmp_path, f"{verse.url} --token-env RM_JV_TOKEN")
