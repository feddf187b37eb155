"""The classic Notebook 6 server (its own venv): no websocket subprotocol, so only the legacy protocol."""

from __future__ import annotations

import threading

import pytest
import websocket
from servers import (
    check_documented,
    exercise,
    new_token,
    notebook6,
    run_in_notebook,
    server_root,
)

from remote_magic import KernelChannel, Registry, Server
from remote_magic.rest import RestClient
from remote_magic.urls import parse_server_url


@pytest.fixture(scope="module")
def nb6(tmp_path_factory):
    process = notebook6(server_root(tmp_path_factory, "nb6-root"), new_token())
    yield process
    process.stop()


@pytest.fixture
def handshakes(monkeypatch):
    """The subprotocols asked for by each kernel websocket handshake of the test."""
    asked: list[object] = []
    real = websocket.WebSocket.connect

    def counting(self, url, **options):
        asked.append(options.get("subprotocols"))
        return real(self, url, **options)

    monkeypatch.setattr(websocket.WebSocket, "connect", counting)
    return asked


def test_a_detected_classic_server_is_never_asked_for_v1(nb6, handshakes):
    server = Server(nb6.url, nb6.token)
    try:
        assert server.capabilities.kind == "notebook6"
        kernel = server.start_kernel()
        assert kernel.run("1 + 1").result == {"text/plain": "2"}
        assert kernel.channel.protocol == "legacy"
        assert handshakes == [None]  # no refused v1 handshake first
        check_documented("classic Notebook 6", server, kernel.channel.protocol)
        kernel.shutdown()
    finally:
        server.close()


def test_auto_falls_back_to_legacy_once_per_server(nb6, handshakes):
    rest = RestClient(parse_server_url(nb6.url)[0], nb6.token)  # nothing detected: the handshake finds out
    server = Server(nb6.url, nb6.token)
    ids = [server.kernels.start()["id"] for _ in range(2)]
    channels = [KernelChannel(rest, kernel_id) for kernel_id in ids]
    try:
        for channel in channels:
            channel.open()
            assert channel.protocol == "legacy"
            assert channel.request("kernel_info_request", {})["content"]["status"] == "ok"
        # one refused v1 handshake, then the server is known to select no subprotocol
        assert handshakes == [["v1.kernel.websocket.jupyter.org"], None, None]
    finally:
        for channel, kernel_id in zip(channels, ids):
            channel.close()
            server.kernels.shutdown(kernel_id)
        server.close()
        rest.close()


def test_v1_only_says_so_in_one_line(nb6):
    server = Server(nb6.url, nb6.token, protocol="v1")
    kernel = server.start_kernel()
    try:
        with pytest.raises(Exception) as info:
            kernel.run("1")
        assert "does not speak the v1" in str(info.value) and "\n" not in str(info.value)
    finally:
        kernel.shutdown()
        server.close()


def test_classic_server_runs_cells(nb6):
    registry = Registry()
    try:
        conn = registry.connect(nb6.url, token=nb6.token, name="nb6")
        result = conn.run("import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7")
        assert result.text() == "out\n" and result.text("stderr") == "err\n"
        assert result.result == {"text/plain": "42"}
        failed = conn.run("raise ValueError('bad value')")
        assert failed.error().ename == "ValueError"
        threading.Timer(0.5, conn.kernel.interrupt).start()
        interrupted = conn.run("import time\ntime.sleep(30)", timeout=20)
        assert interrupted.error().ename == "KeyboardInterrupt"
        kernel_id = conn.kernel.id
        assert kernel_id in {k["id"] for k in conn.server.kernels.list()}
        assert registry.remove("nb6") == [kernel_id]
    finally:
        registry.clear()


def test_what_a_user_does_on_a_classic_server(nb6, shell, capsys, monkeypatch):
    monkeypatch.setenv("RM_NB6_TOKEN", nb6.token)
    line = exercise(shell, capsys, f"{nb6.url} --token-env RM_NB6_TOKEN", offers=FULL)
    assert "classic Notebook server 6." in line


FULL = {"contents": True, "sessions": True, "kernel_listing": True}


def test_from_a_notebook(nb6, tmp_path, monkeypatch):
    monkeypatch.setenv("RM_NB6_TOKEN", nb6.token)
    run_in_notebook(tmp_path, f"{nb6.url} --token-env RM_NB6_TOKEN")
