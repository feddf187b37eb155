"""Every failure a user can cause gives its named exception with a one-line message, and no hang."""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import traceback

import pytest

from remote_magic import (
    AuthenticationError,
    ConnectionLost,
    KernelDied,
    NotAJupyterServer,
    NotFound,
    Registry,
    RemoteMagicError,
    Server,
    ServerUnreachable,
    UsageError,
)
from remote_magic.launch import LaunchedServer, free_port

MISSING_KERNEL = "00000000-0000-4000-8000-000000000000"


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text.strip(), "empty message"
    assert "\n" not in text, f"more than one line: {text!r}"
    return text


@pytest.fixture
def reg():
    registry = Registry()
    yield registry
    registry.clear()


# ---------------------------------------------------------------------------------- plain HTTP servers


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"<html><body>Welcome to nginx!</body></html>"
    content_type = "text/html"
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """Start a plain HTTP server on 127.0.0.1 answering with the given handler class."""
    started = []

    def start(handler: type[http.server.BaseHTTPRequestHandler]) -> str:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


class _Json(_Handler):
    body = json.dumps({"hello": "world"}).encode()
    content_type = "application/json"


class _NotFoundPage(_Handler):
    status = 404


def test_a_web_page_is_not_a_jupyter_server(reg, http_server):
    with pytest.raises(NotAJupyterServer) as info:
        reg.connect(http_server(_Handler), token="t")
    assert "Jupyter" in one_line(info.value)
    assert len(reg) == 0


def test_json_without_a_version_is_not_a_jupyter_server(reg, http_server):
    with pytest.raises(NotAJupyterServer) as info:
        reg.connect(http_server(_Json), token="t")
    one_line(info.value)


def test_a_server_without_the_api_is_not_a_jupyter_server(reg, http_server):
    # e.g. a static file server: /api is a 404 page
    with pytest.raises(NotAJupyterServer) as info:
        reg.connect(http_server(_NotFoundPage), token="t")
    one_line(info.value)


def test_wrong_base_path_is_not_a_jupyter_server(reg, jupyter_server):
    with pytest.raises(NotAJupyterServer) as info:
        reg.connect(jupyter_server.url + "not/the/base/", token=jupyter_server.token)
    one_line(info.value)


# ---------------------------------------------------------------------------------- reaching and auth


def test_wrong_token(reg, jupyter_server):
    with pytest.raises(AuthenticationError) as info:
        reg.connect(jupyter_server.url, token="wrong-token")
    assert "token" in one_line(info.value)
    assert "wrong-token" not in str(info.value)
    assert len(reg) == 0


def test_missing_token(reg, jupyter_server, monkeypatch):
    monkeypatch.delenv("JUPYTER_TOKEN", raising=False)
    with pytest.raises(AuthenticationError) as info:
        reg.connect(jupyter_server.url)
    one_line(info.value)


def test_wrong_token_on_each_call(jupyter_server):
    server = Server(jupyter_server.url, "wrong-token")
    try:
        for call in (server.kernels.list, server.kernelspecs.list, server.sessions.list, server.status):
            with pytest.raises(AuthenticationError) as info:
                call()
            one_line(info.value)
        with pytest.raises(AuthenticationError):
            server.start_kernel()
    finally:
        server.close()


def test_unknown_host(reg):
    with pytest.raises(ServerUnreachable) as info:
        reg.connect("http://no-such-host.invalid:8888/", token="t")
    assert "unknown host" in one_line(info.value)


def test_refused_port(reg):
    with pytest.raises(ServerUnreachable) as info:
        reg.connect(f"http://127.0.0.1:{free_port()}/", token="t")
    assert "refused" in one_line(info.value)


def test_every_error_is_a_remote_magic_error():
    for error in (AuthenticationError, ServerUnreachable, NotAJupyterServer, NotFound, ConnectionLost, KernelDied):
        assert issubclass(error, RemoteMagicError)
        assert error("x")._render_traceback_() == [f"{error.__name__}: x"]


# ---------------------------------------------------------------------------------- 404s


def test_missing_kernel(server):
    for call in (
        lambda: server.kernel(MISSING_KERNEL),
        lambda: server.kernels.get(MISSING_KERNEL),
        lambda: server.kernels.interrupt(MISSING_KERNEL),
        lambda: server.kernels.restart(MISSING_KERNEL),
        lambda: server.kernels.shutdown(MISSING_KERNEL),
    ):
        with pytest.raises(NotFound) as info:
            call()
        one_line(info.value)


def test_missing_kernel_websocket(server):
    from remote_magic.kernel import RemoteKernel

    with pytest.raises(NotFound) as info:
        RemoteKernel(server, MISSING_KERNEL).run("1")
    assert MISSING_KERNEL in one_line(info.value)


def test_missing_session(server):
    with pytest.raises(NotFound) as info:
        server.sessions.get("no-such-session")
    one_line(info.value)


def test_missing_path(server):
    with pytest.raises(NotFound) as info:
        server.contents.get("no/such/file.txt")
    assert "no/such/file.txt" in one_line(info.value)


def test_missing_kernelspec(server):
    with pytest.raises(NotFound) as info:
        server.kernelspecs.get("no-such-language")
    one_line(info.value)


# ---------------------------------------------------------------------------------- server killed mid-cell


def test_server_killed_mid_cell_raises_connection_lost(tmp_path):
    launched = LaunchedServer(str(tmp_path))
    server = Server(launched.url, launched.token)
    kernel_pid = None
    try:
        kernel = server.start_kernel()
        kernel_pid = int(kernel.run("import os; print(os.getpid())").text())
        seen = []
        with pytest.raises((ConnectionLost, KernelDied)) as info:
            for msg in kernel.execute("print('running', flush=True)\nimport time\ntime.sleep(60)", timeout=60):
                seen.append(msg)
                if msg["msg_type"] == "stream":
                    launched.process.kill()  # no goodbye: the process is just gone
        one_line(info.value)
        assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["running\n"]
        # Later calls fail at once with a named error too.
        with pytest.raises((ConnectionLost, ServerUnreachable)):
            kernel.run("1")
        with pytest.raises(ServerUnreachable):
            server.kernels.list()
    finally:
        server.close()
        launched.stop()
        if kernel_pid is not None:  # orphaned by the killed server
            try:
                os.kill(kernel_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------------- bad input, proxies


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "http://127.0.0.1:99999/"])
def test_a_bad_url_is_one_usage_error(reg, url):
    with pytest.raises(UsageError) as info:
        reg.connect(url, token="t")
    assert one_line(info.value).startswith("Not a server URL")
    chain = "".join(traceback.format_exception(info.value))
    assert "During handling" not in chain and "direct cause" not in chain  # no ValueError behind it
    assert len(reg) == 0


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "http://127.0.0.1:99999/"])
def test_a_bad_url_shows_one_line_in_the_shell(shell, capsys, url):
    result = shell.run_cell(f"%remote connect '{url}'")
    assert isinstance(result.error_in_exec, UsageError)
    shown = capsys.readouterr()
    lines = [line for line in (shown.out + shown.err).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("UsageError: Not a server URL"), lines


class _ProxyDown(_Handler):
    """What nginx (or JupyterHub's proxy) answers when the server behind it is down."""

    status = 502
    body = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"


def test_a_proxy_whose_server_is_down_says_so_and_what_to_do(reg, http_server):
    with pytest.raises(ServerUnreachable) as info:
        reg.connect(http_server(_ProxyDown), token="t")
    message = one_line(info.value)
    assert "HTTP 502" in message and "server behind the proxy is down" in message and "check it is running" in message
    assert "<html" not in message


# ---------------------------------------------------------------------------------- the token in a URL


@pytest.mark.parametrize("target", ["refused port", "not jupyter", "wrong scheme", "bad port"])
def test_a_url_token_is_never_echoed_by_a_failed_connect(reg, shell, http_server, capsys, target):
    secret = "SECRET" + "5a7e" * 6
    base = {
        "refused port": f"http://127.0.0.1:{free_port()}/",
        "not jupyter": http_server(_Handler),
        "wrong scheme": "ftp://127.0.0.1/",
        "bad port": "http://127.0.0.1:99999/",
    }[target]
    url = f"{base}lab?token={secret}"
    with pytest.raises(RemoteMagicError) as info:
        reg.connect(url)
    error = info.value
    shown_api = "".join(traceback.format_exception(error)) + repr(error) + "".join(error._render_traceback_())
    assert secret not in shown_api
    result = shell.run_cell(f"%remote connect {url}")
    assert isinstance(result.error_in_exec, type(error))
    shown = capsys.readouterr()
    assert type(error).__name__ + ": " in shown.out + shown.err  # the error was shown ...
    assert secret not in shown.out + shown.err  # ... without the token


def test_a_proxy_refusing_the_kernel_websocket_says_the_server_behind_it_is_down(http_server):
    from remote_magic.channel import KernelChannel
    from remote_magic.rest import RestClient
    from remote_magic.urls import parse_server_url

    url, _ = parse_server_url(http_server(_ProxyDown))
    channel = KernelChannel(RestClient(url, "t"), "00000000-0000-4000-8000-000000000000")
    with pytest.raises(ConnectionLost) as info:
        channel.open()
    message = one_line(info.value)
    assert "HTTP 502" in message and "server behind the proxy" in message and "<html" not in message
