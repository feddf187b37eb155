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


def test_only_the_reader_thread_reads_a_wss_socket(tls, monkeypatch):
    """Two threads reading one TLS socket at once crash OpenSSL (a segfault): once the kernel's
    reader thread (``remote_magic-<kernel>``) reads a socket, closing it must not read its close
    answer from another thread. (The handshake reads before the reader starts.)"""
    import ssl
    import threading

    launched, ca_bundle = tls
    readers: dict[object, list[str]] = {}  # socket (kept alive: no id reused) -> the threads that read it
    kernel_reader = re.compile(r"remote_magic-[0-9a-f]{8}$")  # not remote_magic-rest_N, the REST threads

    def recording(read):
        def recorded(sock, *args, **kwargs):
            readers.setdefault(sock, []).append(threading.current_thread().name)
            return read(sock, *args, **kwargs)

        return recorded

    for method in ("recv", "recv_into"):  # websocket-client reads with one, the frame reader the other
        monkeypatch.setattr(ssl.SSLSocket, method, recording(getattr(ssl.SSLSocket, method)))
    server = Server(launched.url, launched.token, ca_bundle=ca_bundle)
    try:
        assert run_remotely(server) == "42\n"  # shut down: its websocket closed
    finally:
        server.close()
    kernel_sockets = [names for names in readers.values() if any(kernel_reader.match(n) for n in names)]
    assert kernel_sockets, f"no kernel websocket was read by its reader thread: {list(readers.values())}"
    for names in kernel_sockets:
        first = next(i for i, n in enumerate(names) if kernel_reader.match(n))
        after = set(names[first:])
        assert all(kernel_reader.match(n) for n in after), f"read after the reader started by {sorted(after)}"
