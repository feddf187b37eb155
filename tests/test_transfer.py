"""File transfers against a real Jupyter Server: byte-exact, chunked like JupyterLab, never overwriting,
never escaping the folder the user named, and leaving no ``.part`` file when they fail.

A recording proxy (real HTTP, forwarding to the real server) shows what the server receives and
stands for what a real server cannot be made to do: send an unsafe file name, or receive a request
late, after the client's next one (a slow link).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from test_files import names, on_disk, remote

from remote_magic.errors import AlreadyExists, NotFound, UsageError
from remote_magic.launch import LaunchedServer
from remote_magic.server import Server
from remote_magic.transfer import CHUNK_SIZE


class RecordingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to ``upstream``; keeps ``(method, path, JSON body)`` of each request,
    and lets a test rewrite JSON answers (``rewrite``), or act before a request goes on (``before``)
    and once the server has answered it (``after``)."""

    daemon_threads = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream.rstrip("/")
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        self.received: list[tuple[str, str, Any]] = []
        self.answered = 0
        self.rewrite: Any = None  # rewrite(method, path, JSON answer) -> JSON answer
        self.before = self.after = lambda method, path, body: None
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def bodies(self, method: str) -> list[Any]:
        return [body for seen, _, body in self.received if seen == method]

    def idle(self) -> bool:
        """Whether every request received has been answered (or its client went away)."""
        return self.answered == len(self.received)


class _Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self) -> None:
        proxy: RecordingProxy = self.server  # type: ignore[assignment]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        proxy.received.append((self.command, self.path, body))
        try:
            self.relay(proxy, raw, body)
        finally:
            proxy.answered += 1

    def relay(self, proxy: RecordingProxy, raw: bytes, body: Any) -> None:
        proxy.before(self.command, self.path, body)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        answer = requests.request(
            self.command, proxy.upstream + self.path, headers=headers, data=raw, allow_redirects=False, timeout=60
        )
        proxy.after(self.command, self.path, body)
        content = answer.content
        if proxy.rewrite and answer.headers.get("Content-Type", "").startswith("application/json"):
            content = json.dumps(proxy.rewrite(self.command, self.path, answer.json())).encode()
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        try:
            self.wfile.write(content)
        except OSError:
            pass  # the client went away (it was interrupted)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = forward

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(jupyter_server):
    """A :class:`RecordingProxy` in front of the session's server, and a client that goes through it."""
    forwarder = RecordingProxy(jupyter_server.url)
    client = Server(forwarder.url, jupyter_server.token)
    forwarder.client = client
    yield forwarder
    client.close()
    forwarder.shutdown()
    forwarder.server_close()


# ---------------------------------------------------------------------------- byte-exact, chunked, never overwriting


def test_binary_round_trip_larger_than_a_chunk(remote_shell, remote_dir, jupyter_server, tmp_path, capsys):
    data = os.urandom(2 * CHUNK_SIZE + 12345) + bytes(range(256)) + b"\r\n\x00"
    local = tmp_path / "payload.bin"
    local.write_bytes(data)
    remote(remote_shell, f"upload {local} {remote_dir}/")
    out = capsys.readouterr()
    assert f"(2.0 MB, 3 chunks) to {remote_dir}/payload.bin" in out.out
    assert out.err == ""  # no progress line outside a terminal or notebook (see test_progress.py)
    assert on_disk(jupyter_server, f"{remote_dir}/payload.bin").read_bytes() == data
    assert names(on_disk(jupyter_server, remote_dir)) == ["payload.bin"]  # no .part left
    back = tmp_path / "back"
    back.mkdir()
    remote(remote_shell, f"download {remote_dir}/payload.bin {back}")
    assert (back / "payload.bin").read_bytes() == data
    assert os.listdir(back) == ["payload.bin"]  # the temporary file is gone


def test_chunk_boundaries_and_progress(server, remote_dir, jupyter_server, tmp_path):
    data = os.urandom(3000)
    local = tmp_path / "exact.bin"
    local.write_bytes(data)
    seen: list[tuple[int, int]] = []
    model = server.contents.upload(local, f"{remote_dir}/exact.bin", chunk_size=1000, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1000, 3000), (2000, 3000), (3000, 3000)]
    assert model["size"] == 3000 and "hash" not in model
    assert on_disk(jupyter_server, f"{remote_dir}/exact.bin").read_bytes() == data
    assert server.contents.read_bytes(f"{remote_dir}/exact.bin") == data
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert server.contents.upload(empty, f"{remote_dir}/")["size"] == 0
    assert server.contents.download(f"{remote_dir}/empty.bin", tmp_path / "empty-back.bin").read_bytes() == b""


def test_uploads_never_overwrite_without_force(remote_shell, server, remote_dir, jupyter_server, tmp_path):
    target = on_disk(jupyter_server, f"{remote_dir}/data.bin")
    target.write_bytes(b"original")
    small, big = tmp_path / "data.bin", tmp_path / "big.bin"
    small.write_bytes(b"replacement")
    big.write_bytes(os.urandom(CHUNK_SIZE + 1))
    with pytest.raises(AlreadyExists, match="--force"):
        remote(remote_shell, f"upload {small} {remote_dir}/data.bin")
    with pytest.raises(AlreadyExists):
        remote(remote_shell, f"upload {big} {remote_dir}/data.bin")
    assert target.read_bytes() == b"original"
    remote(remote_shell, f"upload {small} {remote_dir}/data.bin --force")
    assert target.read_bytes() == b"replacement"
    remote(remote_shell, f"upload {big} {remote_dir}/data.bin -f")
    assert target.read_bytes() == big.read_bytes()
    assert names(target.parent) == ["data.bin"]
    with pytest.raises(UsageError, match="No local file"):
        remote(remote_shell, f"upload {tmp_path / 'missing.bin'} {remote_dir}/")
    with pytest.raises(UsageError, match="No local file"):
        remote(remote_shell, f"upload {tmp_path} {remote_dir}/")


def test_downloads_never_overwrite_without_force(remote_shell, server, remote_dir, jupyter_server, tmp_path):
    on_disk(jupyter_server, f"{remote_dir}/report.csv").write_bytes(b"a,b\n1,2\n")
    local = tmp_path / "report.csv"
    local.write_bytes(b"mine")
    with pytest.raises(AlreadyExists, match="exists locally; pass --force"):
        remote(remote_shell, f"download {remote_dir}/report.csv {local}")
    assert local.read_bytes() == b"mine"
    remote(remote_shell, f"download {remote_dir}/report.csv {local} --force")
    assert local.read_bytes() == b"a,b\n1,2\n"
    with pytest.raises(NotFound):
        remote(remote_shell, f"download {remote_dir}/nothing.csv {tmp_path}")
    with pytest.raises(UsageError, match="is a directory"):
        remote(remote_shell, f"download {remote_dir} {tmp_path}")
    with pytest.raises(UsageError, match="No local directory"):
        remote(remote_shell, f"download {remote_dir}/report.csv {tmp_path / 'no' / 'such' / 'dir.csv'}")
    assert sorted(os.listdir(tmp_path)) == ["report.csv"]


def test_download_defaults_to_the_current_directory_and_keeps_notebooks_byte_exact(server, remote_dir, jupyter_server, tmp_path, monkeypatch):
    server.contents.new_notebook(f"{remote_dir}/nb.ipynb")
    server.contents.append_cell(f"{remote_dir}/nb.ipynb", "print('é')")
    monkeypatch.chdir(tmp_path)
    path = server.contents.download(f"{remote_dir}/nb.ipynb")
    assert path == Path("nb.ipynb")
    assert (tmp_path / "nb.ipynb").read_bytes() == on_disk(jupyter_server, f"{remote_dir}/nb.ipynb").read_bytes()




# ---------------------------------------------------------------------------- chunks as the server receives them


@pytest.mark.parametrize(("size", "chunks"), [(3000, [1, 2, -1]), (2999, [1, 2, -1]), (2001, [1, 2, -1]), (1001, [1, -1])])
def test_the_last_chunk_is_marked_minus_one_even_on_an_exact_multiple(proxy, remote_dir, jupyter_server, tmp_path, size, chunks):
    data = os.urandom(size)
    local = tmp_path / "data.bin"
    local.write_bytes(data)
    proxy.client.contents.upload(local, f"{remote_dir}/", chunk_size=1000)
    assert [body["chunk"] for body in proxy.bodies("PUT")] == chunks
    assert on_disk(jupyter_server, f"{remote_dir}/data.bin").read_bytes() == data
    assert names(on_disk(jupyter_server, remote_dir)) == ["data.bin"]


def test_a_file_of_one_chunk_or_less_goes_in_one_put_without_chunk_numbers(proxy, remote_dir, tmp_path):
    local = tmp_path / "one.bin"
    local.write_bytes(os.urandom(1000))
    proxy.client.contents.upload(local, f"{remote_dir}/", chunk_size=1000)
    [body] = proxy.bodies("PUT")
    assert "chunk" not in body and body["type"] == "file" and body["format"] == "base64"


# ---------------------------------------------------------------------------- never outside the folder the user named


@pytest.mark.parametrize("sent", ["../x.txt", "../../x.txt", "ABSOLUTE", "..", "", "sub/x.txt"])
def test_a_file_name_from_the_server_never_leads_outside_the_folder(proxy, remote_dir, jupyter_server, tmp_path, monkeypatch, sent):
    on_disk(jupyter_server, f"{remote_dir}/report.txt").write_text("data")
    sent = str(tmp_path / "absolute.txt") if sent == "ABSOLUTE" else sent
    proxy.rewrite = lambda method, path, answer: {**answer, "name": sent} if answer.get("name") == "report.txt" else answer
    folder = tmp_path / "into" / "here"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    for local in (folder, None):  # a folder the user named, and the current one
        with pytest.raises(UsageError, match="not a plain file name; give the local file path"):
            proxy.client.contents.download(f"{remote_dir}/report.txt", local)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["into", "into/here"]
    saved = proxy.client.contents.download(f"{remote_dir}/report.txt", folder / "chosen.txt")  # a file path: the name is not used
    assert saved.read_text() == "data"


def test_a_remote_path_above_the_root_is_refused_before_any_request(proxy, tmp_path):
    with pytest.raises(UsageError, match="outside the server's root directory"):
        proxy.client.contents.download("a/../../x", tmp_path)
    assert proxy.received == [] and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- no .part file left behind


def remote_parts(jupyter_server, remote_dir: str) -> list[str]:
    return [name for name in names(on_disk(jupyter_server, remote_dir)) if name.endswith(".part")]


@pytest.mark.parametrize("stop_at", [1000, 2000, 3000])
def test_an_interrupted_upload_leaves_no_part_file_on_the_server(server, remote_dir, jupyter_server, tmp_path, stop_at):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3000))

    def interrupt(done: int, total: int) -> None:
        if done == stop_at:
            assert remote_parts(jupyter_server, remote_dir), "the upload writes to a .part file"
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        server.contents.upload(local, f"{remote_dir}/", chunk_size=1000, progress=interrupt)
    assert names(on_disk(jupyter_server, remote_dir)) == []


def test_an_interrupted_download_leaves_no_part_file_here(server, remote_dir, jupyter_server, tmp_path):
    on_disk(jupyter_server, f"{remote_dir}/big.bin").write_bytes(os.urandom(2 * CHUNK_SIZE + 1))
    folder = tmp_path / "here"
    folder.mkdir()

    def interrupt(done: int, total: int) -> None:
        assert [p.name for p in folder.iterdir() if p.name.endswith(".part")], "the download writes to a .part file"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        server.contents.download(f"{remote_dir}/big.bin", folder, progress=interrupt)
    assert list(folder.iterdir()) == []


def test_a_download_that_fails_its_check_leaves_no_part_file(proxy, remote_dir, jupyter_server, tmp_path):
    on_disk(jupyter_server, f"{remote_dir}/data.bin").write_bytes(b"12345")
    proxy.rewrite = lambda method, path, answer: {**answer, "size": 4} if answer.get("name") == "data.bin" else answer
    with pytest.raises(Exception, match="came out different from the server's copy"):
        proxy.client.contents.download(f"{remote_dir}/data.bin", tmp_path)
    assert list(tmp_path.iterdir()) == []


def hold_chunk(proxy: RecordingProxy, number: int, on_arrival, release: threading.Event | None = None) -> threading.Event:
    """Make chunk ``number`` reach the server late, as over a slow link: on its arrival the proxy
    calls ``on_arrival()``, then holds it until ``release`` is set (by default: until the server
    has answered the client's next request), 2 s at most. Returns an event set once it is sent on."""
    arrived, sent_on, next_answered = threading.Event(), threading.Event(), release or threading.Event()

    def held(method: str, body: Any) -> bool:
        return method == "PUT" and (body or {}).get("chunk") == number

    def before(method: str, path: str, body: Any) -> None:
        if held(method, body):
            arrived.set()
            on_arrival()
            next_answered.wait(2)
            sent_on.set()

    def after(method: str, path: str, body: Any) -> None:
        if release is None and arrived.is_set() and not held(method, body):
            next_answered.set()

    proxy.before, proxy.after = before, after
    return sent_on


def press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_while_a_chunk_travels_waits_for_it_and_then_removes_the_part_file(proxy, remote_dir, jupyter_server, tmp_path, wait_until, capsys):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3000))
    hold_chunk(proxy, 2, press_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        proxy.client.contents.upload(local, f"{remote_dir}/", chunk_size=1000)
    assert "Finishing the request on its way" in capsys.readouterr().err
    wait_until(proxy.idle, timeout=30, message="the proxy to pass on every request")
    assert names(on_disk(jupyter_server, remote_dir)) == []
    assert [body["chunk"] for body in proxy.bodies("PUT")] == [1, 2]  # nothing was sent after Ctrl-C


def test_a_second_ctrl_c_stops_at_once(proxy, remote_dir, jupyter_server, tmp_path, wait_until, capsys):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3000))
    release = threading.Event()

    def press_twice() -> None:
        press_ctrl_c()
        wait_until(lambda: "Ctrl-C again to stop at once" in capsys.readouterr().err, timeout=10, message="the first Ctrl-C")
        press_ctrl_c()

    sent_on = hold_chunk(proxy, 2, press_twice, release)
    with pytest.raises(KeyboardInterrupt):
        proxy.client.contents.upload(local, f"{remote_dir}/", chunk_size=1000)
    assert not sent_on.is_set()  # it did not wait for the chunk on its way
    release.set()
    wait_until(proxy.idle, timeout=30, message="the proxy to pass on every request")


# ---------------------------------------------------------------------------- a server under a base URL


class ServerUnderBaseURL(LaunchedServer):
    """A launched Jupyter Server living under ``/user/alice/``, as JupyterHub serves a user's."""

    BASE = "user/alice/"

    def __init__(self, root_dir: str):
        super().__init__(root_dir, extra_args=[f"--ServerApp.base_url=/{self.BASE}"])

    def _answers(self) -> bool:
        return requests.get(self.url + self.BASE + "api", timeout=2).ok


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    launched = ServerUnderBaseURL(str(tmp_path_factory.mktemp("alice-root")))
    yield launched
    launched.stop()


def test_downloads_and_uploads_under_a_base_url_are_byte_exact(alice, shell, tmp_path, monkeypatch):
    data = os.urandom(CHUNK_SIZE + 4321) + b"\x00\r\n"
    (Path(alice.root_dir) / "data.bin").write_bytes(data)
    monkeypatch.setenv("RM_ALICE_TOKEN", alice.token)
    shell.run_line_magic("remote", f"connect {alice.url}{alice.BASE} --token-env RM_ALICE_TOKEN --name alice")
    shell.run_line_magic("remote", f"download data.bin {tmp_path}")
    assert (tmp_path / "data.bin").read_bytes() == data
    (tmp_path / "up.bin").write_bytes(data[::-1])
    shell.run_line_magic("remote", f"upload {tmp_path / 'up.bin'}")
    assert (Path(alice.root_dir) / "up.bin").read_bytes() == data[::-1]
    server = Server(f"{alice.url}{alice.BASE}", alice.token)
    try:
        assert server.contents.read_bytes("up.bin") == data[::-1]
    finally:
        server.close()
