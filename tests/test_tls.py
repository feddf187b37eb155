"""HTTPS and wss: a real Jupyter Server behind a certificate from a test CA (trustme)."""

from __future__ import annotations

import re
import warnings

import pytest
import trustme

from remote_magic import Server, ServerUnreachable
from remote_magic.launch import LaunchedServer


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(server, ca_bundle): a server on https://127.0.0.1 whose certificate the CA bundle trusts."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    certfile, keyfile, ca_bundle = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    certfile.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(ca_bundle))
    launched = LaunchedServer(tls=(str(certfile), str(keyfile)))
    yield launched, str(ca_bundle)
    launched.stop()


def run_remotely(server: Server) -> str:
    """Start a kernel over HTTPS, run code over wss, stop the kernel."""
    kernel = server.start_kernel()
    try:
        return kernel.run("print(6 * 7)", timeout=60).text()
    finally:
        kernel.shutdown()


def test_certificates_are_verified_by_default(tls, monkeypatch):
    launched, ca_bundle = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)  # the environment's bundle is honoured by default
    server = Server(launched.url, launched.token)
    assert server.status()["started"]
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(ServerUnreachable) as info:
        server.status()
    message = str(info.value)
    assert "TLS verification failed" in message and "--ca-bundle" in message
    assert "\n" not in message and launched.token not in message
    server.close()


def test_a_ca_bundle_verifies_https_and_the_kernel_websocket(tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")  # an explicit bundle wins over it
    launched, ca_bundle = tls
    server = Server(launched.url, launched.token, ca_bundle=ca_bundle)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verified: no warning of any kind
        assert server.status()["started"]
        assert run_remotely(server) == "42\n"  # the websocket is wss, verified with the same bundle
    server.close()


def test_verification_can_be_turned_off_with_a_warning(tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")  # explicitly off wins over it
    launched, _ = tls
    with pytest.warns(UserWarning, match="TLS certificate verification is off"):
        server = Server(launched.url, launched.token, verify=False)
    assert run_remotely(server) == "42\n"
    server.close()


def test_the_magic_connects_with_a_ca_bundle(shell, tls, monkeypatch, capsys):
    launched, ca_bundle = tls
    monkeypatch.setenv("RM_TLS_TOKEN", launched.token)
    shell.run_line_magic("remote", f"connect {launched.url} --token-env RM_TLS_TOKEN --ca-bundle {ca_bundle} --name tls")
    assert capsys.readouterr().out.startswith(f"Connected 'tls': {launched.url}")
    result = shell.run_cell("%%remote\nprint('over wss')")
    assert result.success
    assert capsys.readouterr().out == "over wss\n"
    shell.run_line_magic("remote", "disconnect tls")


def test_no_two_threads_read_a_wss_socket_at_once(tls, monkeypatch, wait_until):
    """Two threads reading one TLS socket at once crash OpenSSL (a segfault). A kernel's websocket
    is read by whoever has the turn: the threads waiting for requests, which read their messages
    themselves, and the kernel's reader thread (``remote_magic-<kernel>``), which reads output that
    comes while no request waits; never two at once, closing included."""
    import ssl
    import threading

    launched, ca_bundle = tls
    guard = threading.Lock()
    readers: dict[object, set[str]] = {}  # socket (kept alive: no id reused) -> the threads that read it
    inside: dict[object, set[int]] = {}  # socket -> the threads reading it now
    overlaps: list[str] = []

    def recording(read):
        def recorded(sock, *args, **kwargs):
            me = threading.get_ident()
            with guard:
                readers.setdefault(sock, set()).add(threading.current_thread().name)
                if inside.setdefault(sock, set()):
                    overlaps.append(threading.current_thread().name)
                inside[sock].add(me)
            try:
                return read(sock, *args, **kwargs)
            finally:
                with guard:
                    inside[sock].discard(me)

        return recorded

    for method in ("recv", "recv_into"):  # websocket-client reads with one, the frame reader the other
        monkeypatch.setattr(ssl.SSLSocket, method, recording(getattr(ssl.SSLSocket, method)))
    server = Server(launched.url, launched.token, ca_bundle=ca_bundle)
    kernel = server.start_kernel()
    try:
        kernel.run("import threading, time", timeout=60)
        results: list[str] = []

        def request(index: int) -> None:
            results.append(kernel.run(f"time.sleep(0.05); print({index})", timeout=60).text())

        workers = [threading.Thread(target=request, args=(index,), name=f"requester-{index}") for index in range(4)]
        for worker in workers:
            worker.start()
        request(4)
        for worker in workers:
            worker.join(60)
        kernel.run("threading.Timer(0.3, print, ['after the request']).start()", timeout=60)
        late = wait_until(kernel.channel._router.take_late, timeout=30)  # read by the reader thread
        assert late[0]["content"]["text"] == "after the request\n"
        assert sorted(results) == [f"{index}\n" for index in range(5)]
    finally:
        kernel.shutdown()
        server.close()
    kernel_reader = re.compile(r"remote_magic-[0-9a-f]{8}$")  # not remote_magic-rest_N, the REST threads
    kernel_sockets = [names for names in readers.values() if any(kernel_reader.match(name) for name in names)]
    assert len(kernel_sockets) == 1, readers
    assert {"MainThread", "requester-0"} <= kernel_sockets[0], kernel_sockets  # requests read for themselves
    assert not overlaps, f"read by two threads at once: {overlaps}"
