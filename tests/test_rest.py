"""Server addresses and the REST resources of a real Jupyter Server."""

from __future__ import annotations

from pathlib import Path

import pytest

from remote_magic import NotFound, Server, UsageError
from remote_magic.urls import ServerURL, parse_server_url

# ---------------------------------------------------------------------------------- addresses


def test_token_is_taken_out_of_the_url():
    url, token = parse_server_url("http://host:8888/?token=abc123&foo=bar#frag")
    assert token == "abc123"
    assert str(url) == "http://host:8888/"
    assert "abc123" not in repr(url)


def test_base_path_is_kept_and_ui_paths_dropped():
    url, token = parse_server_url("https://hub.example.org/user/alice/lab/tree/work/x.ipynb?token=t")
    assert (url.scheme, url.netloc, url.base_path, token) == ("https", "hub.example.org", "/user/alice/", "t")
    assert parse_server_url("localhost:8888")[0] == ServerURL("http", "localhost:8888", "/")
    assert parse_server_url("http://h/prefix/api/kernels")[0].base_path == "/prefix/"


def test_credentials_in_the_netloc_are_dropped():
    url, _ = parse_server_url("http://user:pass@host:1/")
    assert url.netloc == "host:1" and "pass" not in str(url)


def test_api_and_websocket_urls_join_under_the_base_path():
    url, _ = parse_server_url("https://h:9/user/al%20ice/")
    assert url.api("kernels", "k1", "interrupt") == "https://h:9/user/al%20ice/api/kernels/k1/interrupt"
    assert url.api("contents", "dir/a b.txt", query={"content": "0"}) == (
        "https://h:9/user/al%20ice/api/contents/dir/a%20b.txt?content=0"
    )
    assert url.websocket("kernels", "k1", "channels", query={"session_id": "s"}) == (
        "wss://h:9/user/al%20ice/api/kernels/k1/channels?session_id=s"
    )
    assert ServerURL("http", "h", "/").websocket("x").startswith("ws://h/api/x")


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("", "http:// or https://"),
        ("ftp://host/", "http:// or https://"),
        ("http://", "http:// or https://"),
        ("::::", "and a host"),
        ("not a url", "'not a url' is not a host name"),
        ("http://a..b/", "'a..b' is not a host name"),
        ("http://[::1", "IPv6"),
        ("http://[::1/", "IPv6"),
        ("http://[not-v6]:8888/", "IPv6"),
        ("http://host:99999/", "port must be a number from 1 to 65535"),
        ("http://host:0/", "port"),
        ("http://host:http/", "port"),
    ],
)
def test_not_a_server_url(bad, reason):
    """One line naming what is wrong, never the query or credentials (a token may be in them)."""
    with pytest.raises(UsageError) as info:
        parse_server_url(bad.replace("//", "//alice:pw@", 1) + "?token=SECRET")
    message = str(info.value)
    assert "\n" not in message and message.startswith("Not a server URL") and reason in message
    assert "SECRET" not in message and "pw" not in message


def test_unusual_but_valid_addresses():
    assert parse_server_url("http://[fe80::1%eth0]:8888/")[0].netloc == "[fe80::1%eth0]:8888"
    assert parse_server_url("https://bücher.example./x/")[0].base_path == "/x/"
    assert parse_server_url("my_host:65535")[0].netloc == "my_host:65535"


def test_server_uses_the_token_from_the_url(jupyter_server):
    server = Server(f"{jupyter_server.url}lab?token={jupyter_server.token}")
    try:
        assert server.has_token
        assert isinstance(server.kernels.list(), list)  # authenticated with it
        assert str(server.url) == jupyter_server.url
    finally:
        server.close()


def test_token_from_the_environment(jupyter_server, monkeypatch):
    monkeypatch.setenv("JUPYTER_TOKEN", jupyter_server.token)
    server = Server(jupyter_server.url)
    try:
        assert isinstance(server.kernels.list(), list)
    finally:
        server.close()


# ---------------------------------------------------------------------------------- resources


def test_server_wide_calls(server):
    assert server.version().count(".") >= 1
    status = server.status()
    assert {"started", "last_activity", "connections", "kernels"} <= set(status)
    me = server.me()
    assert me is not None and "identity" in me


def test_kernelspecs(server):
    specs = server.kernelspecs.list()
    assert server.kernelspecs.default() == specs["default"] == "python3"
    assert server.kernelspecs.get("python3")["spec"]["language"] == "python"


def test_kernel_lifecycle_over_rest(server):
    model = server.kernels.start()
    kernel_id = model["id"]
    try:
        assert model["name"] == "python3"
        assert kernel_id in {k["id"] for k in server.kernels.list()}
        assert server.kernels.get(kernel_id)["id"] == kernel_id
        server.kernels.interrupt(kernel_id)
        assert server.kernels.restart(kernel_id)["id"] == kernel_id
    finally:
        server.kernels.shutdown(kernel_id)
    assert kernel_id not in {k["id"] for k in server.kernels.list()}
    with pytest.raises(NotFound):
        server.kernels.get(kernel_id)


def test_kernel_handle_by_id(server, kernel):
    handle = server.kernel(kernel.id)
    assert handle == kernel and hash(handle) == hash(kernel)
    assert handle.model()["id"] == kernel.id


def test_sessions_bind_a_kernel_to_a_path(server):
    session = server.sessions.create("rest-test/notebook.ipynb", kernel_name="python3")
    try:
        assert session["path"] == "rest-test/notebook.ipynb"
        assert server.sessions.find("rest-test/notebook.ipynb")["id"] == session["id"]
        # The server answers the existing session for a path that has one.
        assert server.sessions.create("rest-test/notebook.ipynb")["id"] == session["id"]
        moved = server.sessions.patch(session["id"], path="rest-test/moved.ipynb")
        assert moved["path"] == "rest-test/moved.ipynb" and moved["kernel"]["id"] == session["kernel"]["id"]
        assert server.sessions.get(session["id"])["path"] == "rest-test/moved.ipynb"
    finally:
        server.sessions.delete(session["id"])
    assert server.sessions.find("rest-test/moved.ipynb") is None
    # Deleting the session stopped its kernel too.
    assert session["kernel"]["id"] not in {k["id"] for k in server.kernels.list()}


def test_contents_list_and_read(server, jupyter_server):
    root = Path(jupyter_server.root_dir)
    (root / "rest-contents").mkdir(exist_ok=True)
    (root / "rest-contents" / "hello.txt").write_text("hi there\n")
    names = {entry["name"] for entry in server.contents.list("rest-contents")}
    assert names == {"hello.txt"}
    model = server.contents.get("rest-contents/hello.txt")
    assert model["type"] == "file" and model["content"] == "hi there\n"
    assert server.contents.get("rest-contents/hello.txt", content=False)["content"] is None
