"""The token never shows: not in a repr, an exception, a log record (any logger, DEBUG), or a URL."""

from __future__ import annotations

import json
import logging
import os
import traceback
from pathlib import Path

import pytest
import requests
import requests.cookies

import remote_magic
from remote_magic import (
    AuthenticationError,
    KernelChannel,
    NotAJupyterServer,
    NotFound,
    Registry,
    RemoteExecutionError,
    RemoteMagicError,
    Server,
    ServerUnreachable,
)
from remote_magic.auth import ServerAuth
from remote_magic.launch import free_port, launched_server
from remote_magic.rest import RestClient
from remote_magic.urls import parse_server_url

WRONG = "wrong-" + "9f3c" * 8  # a bad token must not leak either


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.texts.append(self.format(record))  # message, args and any exception text


@pytest.fixture
def all_logs():
    """Every logger at DEBUG (urllib3, websocket, requests, remote_magic, ...) into one handler."""
    handler = _Everything()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in list(logging.root.manager.loggerDict)}
    saved_root = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "websocket", "requests", "remote_magic", *saved):
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).disabled = False
    yield handler
    root.removeHandler(handler)
    root.setLevel(saved_root)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def shows(text: str, *secrets: str) -> bool:
    return any(secret in text for secret in secrets)


def exception_text(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def test_token_is_in_no_log_no_error_no_repr_no_url(jupyter_server, all_logs, http_server_url):
    token = jupyter_server.token
    secrets = (token, WRONG)
    errors: list[BaseException] = []
    registry = Registry()
    try:
        # The token arrives in the URL, as copied from a server's start-up banner.
        conn = registry.connect(f"{jupyter_server.url}lab?token={token}", name="secret")
        server = conn.server
        kernel = conn.start_kernel()
        result = kernel.run(
            "import getpass\nprint('hi')\npw = getpass.getpass('pw: ')\n1 / 0",
            input=lambda prompt, password: "typed",
        )
        errors.append(result.error())
        assert isinstance(errors[-1], RemoteExecutionError)

        def expect(kind, call):
            with pytest.raises(kind) as info:
                call()
            errors.append(info.value)

        expect(NotFound, lambda: server.kernel("00000000-0000-4000-8000-000000000000"))
        expect(NotFound, lambda: server.contents.get("missing/file.txt"))
        expect(AuthenticationError, lambda: Registry().connect(jupyter_server.url, token=WRONG))
        expect(AuthenticationError, lambda: KernelChannel(RestClient(server.url, WRONG), kernel.id).open())
        expect(ServerUnreachable, lambda: Server(f"http://127.0.0.1:{free_port()}/", token).version())
        expect(ServerUnreachable, lambda: Server("http://no-such-host.invalid/", token).version())
        expect(NotAJupyterServer, lambda: Registry().connect(http_server_url, token=token))
        expect(NotAJupyterServer, lambda: Registry().connect(f"{jupyter_server.url}wrong/base/?token={token}"))

        # reprs and strs of every object that holds the token or a way to it
        objects = [
            server,
            conn,
            registry,
            server._rest,
            server._rest.auth,
            ServerAuth(token, requests.cookies.RequestsCookieJar()),
            kernel.channel,
            kernel,
            server.url,
            server.kernels,
            result,
        ]
        for obj in objects:
            assert not shows(repr(obj), *secrets), repr(obj)
            assert not shows(str(obj), *secrets), str(obj)

        # URLs built for REST and the websocket: never a token in them
        for url in (
            str(server.url),
            server.url.api("kernels", kernel.id),
            server.url.websocket("kernels", kernel.id, "channels", query={"session_id": kernel.channel.session_id}),
        ):
            assert not shows(url, *secrets) and "token" not in url, url
        assert parse_server_url(f"{jupyter_server.url}?token={token}")[1] == token  # it was taken, not lost
    finally:
        registry.clear()

    for error in errors:
        assert isinstance(error, RemoteMagicError)
        assert not shows(exception_text(error), *secrets), exception_text(error)

    assert all_logs.records, "no log record was captured: the check would prove nothing"
    names = {record.name.split(".")[0] for record in all_logs.records}
    assert "urllib3" in names  # requests' transport did log at DEBUG
    for text in all_logs.texts:
        assert not shows(text, *secrets), text
        assert "token=" not in text, text


@pytest.fixture
def http_server_url():
    """A plain web page server on 127.0.0.1 (not Jupyter)."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_token_auth_sends_the_header_but_never_shows_it():
    auth = ServerAuth("s3cr3t-value", requests.cookies.RequestsCookieJar())
    assert auth.header_lines() == ["Authorization: token s3cr3t-value"]
    assert "s3cr3t-value" not in repr(auth)
    assert ServerAuth(None, requests.cookies.RequestsCookieJar()).header_lines() == []


def test_a_launched_server_and_its_kernels_get_no_token(remote_shell, jupyter_server, monkeypatch):
    """No variable holding a token reaches a launched server or its kernels: not those the
    registry's connections named (--token-env), not JUPYTER_TOKEN and friends, not its own token."""
    other = {"JUPYTER_TOKEN": "jupyter-" + "5a" * 16, "JUPYTERHUB_API_TOKEN": "hub-" + "6b" * 16}
    for name, value in other.items():
        monkeypatch.setenv(name, value)
    connection = remote_magic.launch_local(name="private")
    server = launched_server(connection)
    secrets = (jupyter_server.token, server.token, *other.values())

    kernel_env = json.loads(connection.run("import os, json\nprint(json.dumps(dict(os.environ)))").text())
    server_env = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{server.pid}/environ").read_text().split("\0") if "=" in entry
    )
    assert kernel_env.get("PATH") == os.environ["PATH"], "the rest of the environment is passed on"
    for env in (kernel_env, server_env):
        named = {"RM_TEST_TOKEN", *other} & env.keys()
        assert not named, sorted(named)
        assert not shows(json.dumps(env), *secrets), "a token value reached the launched server"
    assert requests.get(server.url + "api/kernels", timeout=30).status_code == 403, "the server lost its token"
    assert connection.run("1 + 1").result == {"text/plain": "2"}
