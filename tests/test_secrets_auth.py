"""Passwords and session cookies are secrets like tokens: never in a repr, an error, a log record
(any logger, DEBUG, websocket trace on), the history, or a launched server's environment."""

from __future__ import annotations

import pytest
import websocket
from servers import PASSWORD
from test_secrets import all_logs, exception_text, shows  # noqa: F401  (all_logs is a fixture)

from remote_magic import (
    AuthenticationError,
    ConnectionLost,
    KernelChannel,
    NotFound,
    Registry,
    RemoteMagicError,
)


def test_password_and_cookies_are_in_no_log_no_error_no_repr(locked, all_logs, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RM_SECRET_PASSWORD", PASSWORD)
    websocket.enableTrace(True)
    registry = Registry()
    errors: list[BaseException] = []
    try:
        conn = registry.connect(locked.url, password_env="RM_SECRET_PASSWORD", name="locked")
        assert conn.run("print('hi')").text() == "hi\n"  # REST and the websocket with the cookie
        rest = conn.server._rest
        cookies = [cookie.value for cookie in rest.http.cookies]
        assert len(cookies) >= 2  # the _xsrf cookie and the login's session cookie
        secrets = (PASSWORD, *cookies)
        for call, kind in (
            (lambda: Registry().connect(locked.url, password="x" + PASSWORD), AuthenticationError),
            (lambda: conn.server.kernel("00000000-0000-4000-8000-000000000000"), NotFound),
            (lambda: KernelChannel(rest, "00000000-0000-4000-8000-000000000000").open(), (NotFound, ConnectionLost)),
        ):
            with pytest.raises(kind) as info:
                call()
            errors.append(info.value)
        for obj in (conn, conn.server, rest, rest.auth, registry, conn.kernel.channel, conn.kernel):
            assert not shows(repr(obj), *secrets) and not shows(str(obj), *secrets), repr(obj)
        assert "RM_SECRET_PASSWORD" in registry.token_variables()  # kept from launched servers
    finally:
        websocket.enableTrace(False)
        registry.clear()
    for error in errors:
        assert isinstance(error, RemoteMagicError)
        assert not shows(exception_text(error), *secrets), exception_text(error)
    assert any(text.startswith("websocket") for text in all_logs.texts), "no handshake trace was captured"
    for text in all_logs.texts:
        assert not shows(text, *secrets), text


def test_the_password_is_not_in_the_history(locked, shell, monkeypatch, capsys):
    monkeypatch.setenv("RM_SECRET_PASSWORD", PASSWORD)
    shell.run_line_magic("remote", f"connect {locked.url} --password-env RM_SECRET_PASSWORD --name locked")
    assert shell.run_cell("%%remote\n'ok'").success
    history = "\n".join(source for _, _, source in shell.history_manager.get_range())
    shown = capsys.readouterr()
    assert not shows(history + shown.out + shown.err, PASSWORD)
