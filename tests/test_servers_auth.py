"""Servers without a token: one with none at all (XSRF cookie on writes) and one with a password
(a browser's login; the session cookie on REST and the websocket)."""

from __future__ import annotations

import getpass

import pytest
from servers import (
    PASSWORD,
    check_documented,
    documented,
    exercise,
    run_in_notebook,
    server_root,
    tokenless_server,
)

from remote_magic import AuthenticationError, Registry, Server
from remote_magic.capabilities import KINDS


@pytest.fixture(scope="module")
def tokenless(tmp_path_factory):
    process = tokenless_server(server_root(tmp_path_factory, "tokenless-root"))
    yield process
    process.stop()


FULL = {"contents": True, "sessions": True, "kernel_listing": True}


def test_a_server_without_token_takes_writes_with_the_xsrf_cookie(tokenless, shell, capsys):
    exercise(shell, capsys, tokenless.url, offers=FULL)


def test_a_server_without_token_detected(tokenless):
    server = Server(tokenless.url)
    try:
        assert server.capabilities.kind == "jupyter-server" and server.capabilities.offers() == FULL
        kernel = server.start_kernel()  # a POST: refused without the X-XSRFToken header
        assert server._rest.auth.xsrf and not server.has_token
        kernel.run("pass")
        check_documented("Jupyter Server 2 without a token", server, kernel.channel.protocol)
        kernel.shutdown()
    finally:
        server.close()


def test_password_server_with_password_env(locked, shell, capsys, monkeypatch):
    monkeypatch.setenv("RM_TEST_PASSWORD", PASSWORD)
    line = exercise(shell, capsys, f"{locked.url} --password-env RM_TEST_PASSWORD", offers=FULL)
    assert PASSWORD not in line


def test_password_server_with_ask_password(locked, shell, capsys, monkeypatch):
    asked = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": asked.append(prompt) or PASSWORD)
    shell.run_line_magic("remote", f"connect {locked.url} --ask-password --name pw")
    assert asked == ["Password: "]
    assert shell.run_cell("%%remote\n1 + 1").success  # the websocket took the session cookie
    assert PASSWORD not in capsys.readouterr().out


def test_a_wrong_password_is_refused_in_one_line_and_registers_nothing(locked):
    registry = Registry()
    with pytest.raises(AuthenticationError) as info:
        registry.connect(locked.url, password="not-" + PASSWORD)
    message = str(info.value)
    assert "refused the password" in message and "\n" not in message and PASSWORD not in message
    assert len(registry) == 0


def test_no_credentials_for_a_password_server_says_what_to_pass(locked):
    registry = Registry()
    with pytest.raises(AuthenticationError) as info:
        registry.connect(locked.url)
    assert "--password-env" in str(info.value) and "token is missing" not in str(info.value)
    assert len(registry) == 0


def test_the_documented_table_for_jupyter_server_with_a_token_and_a_password(jupyter_server, locked):
    for target, server in (
        ("Jupyter Server 2 (JupyterLab 4, Notebook 7)", Server(jupyter_server.url, jupyter_server.token)),
        ("Jupyter Server 2 with a password", Server(locked.url, password=PASSWORD)),
    ):
        try:
            kernel = server.start_kernel()
            kernel.run("pass")
            check_documented(target, server, kernel.channel.protocol)
            kernel.shutdown()
        finally:
            server.close()


def test_the_documented_table_names_every_kind_once_at_least():
    assert {row["kind"] for row in documented().values()} == set(KINDS)


def test_from_a_notebook(tokenless, locked, tmp_path, monkeypatch):
    monkeypatch.setenv("RM_TEST_PASSWORD", PASSWORD)
    run_in_notebook(tmp_path, tokenless.url)
    run_in_notebook(tmp_path, f"{locked.url} --password-env RM_TEST_PASSWORD")
