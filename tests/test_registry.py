"""Named connections: add, get, use, remove, the current one, and which kernels a removal stops."""

from __future__ import annotations

import os

import pytest

from remote_magic import ConnectionNotFound, Registry, Server, UsageError
from remote_magic.connection import Connection


def kernel_ids(jupyter_server) -> set[str]:
    server = Server(jupyter_server.url, jupyter_server.token)
    try:
        return {k["id"] for k in server.kernels.list()}
    finally:
        server.close()


def test_connect_registers_and_makes_current(registry, jupyter_server):
    assert registry.current is None
    with pytest.raises(ConnectionNotFound):
        registry.get()
    conn = registry.connect(jupyter_server.url, token=jupyter_server.token, name="one")
    assert isinstance(conn, Connection)
    assert registry.current is conn and registry.get() is conn and registry.get("one") is conn
    assert "one" in registry and len(registry) == 1 and list(registry) == [conn]
    assert str(conn.server.url) == jupyter_server.url


def test_connect_asks_its_questions_in_two_round_trips(registry, jupyter_server, monkeypatch):
    """The server's kind, the credentials and each optional API are asked at the same time (each
    request is held until all five are in flight: one after another they could not pass), then
    this process's own session: two round trips, whatever the link's delay."""
    import threading
    from urllib.parse import urlsplit

    import requests

    together = threading.Barrier(5, timeout=15)
    paths: list[str] = []
    lock = threading.Lock()
    real_send = requests.Session.send

    def send(session, request, **kwargs):
        with lock:
            paths.append(urlsplit(request.url).path)
            first_round = len(paths) <= 5
        if first_round:
            together.wait()
        return real_send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    registry.connect(jupyter_server.url, token=jupyter_server.token, name="one")
    assert sorted(paths[:5]) == ["/api", "/api/contents", "/api/kernels", "/api/kernelspecs", "/api/sessions"]
    assert paths[5:] == ["/api/sessions"], paths  # is this process's session still there


def test_connect_names_a_local_server_by_default(registry, jupyter_server):
    conn = registry.connect(jupyter_server.url, token=jupyter_server.token)
    assert conn.name == "local"


def test_token_from_a_named_environment_variable(registry, jupyter_server, monkeypatch):
    monkeypatch.setenv("MY_SERVER_TOKEN", jupyter_server.token)
    conn = registry.connect(jupyter_server.url, token_env="MY_SERVER_TOKEN", name="env")
    assert conn.server.has_token
    monkeypatch.delenv("MY_SERVER_TOKEN")
    with pytest.raises(UsageError) as info:
        registry.connect(jupyter_server.url, token_env="MY_SERVER_TOKEN", name="env2")
    assert "MY_SERVER_TOKEN" in str(info.value) and "env2" not in registry


def test_use_switches_the_current_connection(registry, jupyter_server):
    first = registry.connect(jupyter_server.url, token=jupyter_server.token, name="first")
    second = registry.connect(jupyter_server.url, token=jupyter_server.token, name="second")
    assert registry.current is second
    assert registry.use("first") is first
    assert registry.current is first and registry.get() is first
    with pytest.raises(ConnectionNotFound) as info:
        registry.use("third")
    assert "first" in str(info.value) and "second" in str(info.value)  # says which names exist
    assert registry.current is first


def test_each_connection_runs_on_its_own_kernel(registry, jupyter_server):
    a = registry.connect(jupyter_server.url, token=jupyter_server.token, name="a")
    b = registry.connect(jupyter_server.url, token=jupyter_server.token, name="b")
    a.start_kernel()
    b.start_kernel()
    a.run("where = 'a'")
    b.run("where = 'b'")
    assert registry.get("a").run("where").result == {"text/plain": "'a'"}
    assert registry.get("b").run("where").result == {"text/plain": "'b'"}


def test_remove_current_falls_back_to_another(registry, jupyter_server):
    registry.connect(jupyter_server.url, token=jupyter_server.token, name="a")
    registry.connect(jupyter_server.url, token=jupyter_server.token, name="b")
    registry.remove()  # the current one, "b"
    assert "b" not in registry and registry.current.name == "a"
    registry.remove("a")
    assert registry.current is None and len(registry) == 0
    with pytest.raises(ConnectionNotFound):
        registry.remove("a")


def test_removing_stops_only_the_kernels_it_started(registry, jupyter_server):
    outsider = Server(jupyter_server.url, jupyter_server.token)
    attached = outsider.start_kernel()  # someone else's kernel
    try:
        conn = registry.connect(jupyter_server.url, token=jupyter_server.token, name="work")
        mine = conn.start_kernel()
        conn.attach(attached.id)
        assert conn.run("1 + 1").result == {"text/plain": "2"}  # runs on the attached kernel
        before = kernel_ids(jupyter_server)
        assert {mine.id, attached.id} <= before

        stopped = registry.remove("work")

        after = kernel_ids(jupyter_server)
        assert stopped == [mine.id]
        assert after == before - {mine.id}  # only the kernel it started is gone
        assert attached.run("print('still alive')").text() == "still alive\n"
    finally:
        attached.shutdown()
        outsider.close()


def test_remove_can_leave_started_kernels_running(registry, jupyter_server):
    conn = registry.connect(jupyter_server.url, token=jupyter_server.token, name="keep")
    kernel = conn.start_kernel()
    try:
        assert registry.remove("keep", stop_started=False) == []
        assert kernel.id in kernel_ids(jupyter_server)
    finally:
        Server(jupyter_server.url, jupyter_server.token).kernels.shutdown(kernel.id)


def test_connecting_the_same_name_replaces_the_connection(registry, jupyter_server):
    old = registry.connect(jupyter_server.url, token=jupyter_server.token, name="same")
    old_kernel = old.start_kernel()
    new = registry.connect(jupyter_server.url, token=jupyter_server.token, name="same")
    assert new is not old
    assert len(registry) == 1 and registry.get("same") is new and registry.current is new
    assert old_kernel.id not in kernel_ids(jupyter_server)  # the replaced one was closed properly


def test_clear_removes_everything(registry, jupyter_server):
    for name in ("x", "y"):
        registry.connect(jupyter_server.url, token=jupyter_server.token, name=name).start_kernel()
    started = {k for conn in registry for k in conn.started}
    registry.clear()
    assert len(registry) == 0 and registry.current is None
    assert not started & kernel_ids(jupyter_server)


def test_a_registry_on_its_own_is_independent(jupyter_server):
    mine = Registry()
    try:
        mine.connect(jupyter_server.url, token=jupyter_server.token, name="private")
        import remote_magic

        assert "private" not in remote_magic.registry
    finally:
        mine.clear()


def test_stop_unreachable_keeps_only_kernels_a_later_process_can_find(registry, jupyter_server, server):
    """What exit stops: kernels in no session or in this process's pid-named session; not a kernel at
    a chosen path, nor one it only attached to."""
    theirs = server.start_kernel()
    try:
        conn = registry.connect(jupyter_server.url, token=jupyter_server.token, name="exit")
        assert f"-ipython-{os.getpid()}-" in conn.session_path  # no notebook here
        own = conn.default_kernel().id
        kept = conn.start_session(f"work/kept-{os.getpid()}.ipynb", make_default=False).id
        loose = conn.start_kernel(make_default=False).id
        conn.attach(theirs.id)
        assert conn.attached == {theirs.id} and conn.started == {own, kept, loose}

        assert conn.stop_unreachable() == sorted([own, loose])

        assert kernel_ids(jupyter_server) & {own, kept, loose, theirs.id} == {kept, theirs.id}
        assert conn.started == {kept}
    finally:
        theirs.shutdown()
