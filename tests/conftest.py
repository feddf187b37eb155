"""Shared fixtures: a real Jupyter Server on 127.0.0.1 with a random port and token, real kernels."""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid

import pytest

# Keep the test run's servers out of the user's own runtime directory (discovery tests rely on it).
os.environ.setdefault("JUPYTER_RUNTIME_DIR", tempfile.mkdtemp(prefix="remote_magic-runtime-"))
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="remote_magic-ipython-"))
os.environ.pop("JUPYTER_TOKEN", None)
os.environ.pop("JUPYTER_SERVER_URL", None)

from remote_magic import Registry, Server  # noqa: E402
from remote_magic.errors import NotFound  # noqa: E402
from remote_magic.launch import LaunchedServer  # noqa: E402

pytest_plugins = ["servers"]  # fixtures of servers other than token Jupyter Server 2 (tests/servers.py)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory):
    """A real Jupyter Server for the whole test session (url, token, root_dir, pid)."""
    root = tmp_path_factory.mktemp("server-root")
    launched = LaunchedServer(str(root))
    yield launched
    launched.stop()


@pytest.fixture
def server(jupyter_server):
    """A client of the session's server; its websockets are closed afterwards."""
    client = Server(jupyter_server.url, jupyter_server.token)
    yield client
    client.close()


@pytest.fixture
def kernel(server):
    """A fresh kernel on the session's server, shut down afterwards."""
    remote = server.start_kernel()
    yield remote
    try:
        remote.shutdown()
    except Exception:
        pass  # the test stopped it already


@pytest.fixture
def remote_dir(server, jupyter_server):
    """A fresh directory on the session's server for one test (its path)."""
    name = f"files-{uuid.uuid4().hex[:8]}"
    server.contents.mkdir(name)
    yield name
    server.contents.delete(name, recursive=True)


@pytest.fixture
def registry():
    """A private registry; every connection is removed (and kernels it started stopped) afterwards."""
    reg = Registry()
    yield reg
    reg.clear()


def _wait_until(predicate, timeout: float = 60.0, message: str = "the condition"):
    """Poll ``predicate`` until it returns something true, and return that (a hang guard only)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {message}")
        time.sleep(0.1)


@pytest.fixture
def wait_until():
    """``wait_until(predicate, timeout=60, message=...)``: poll until true; fail after ``timeout``."""
    return _wait_until


@pytest.fixture
def make_busy():
    """``make_busy(kernel)``: run a long sleep on ``kernel`` in a thread; returns the thread once the
    server reports the kernel busy (``thread.outcome`` holds the ExecutionResult or exception).
    Kernels still busy at the end are interrupted."""
    threads = []

    def make(remote):
        def work():
            try:
                thread.outcome = remote.run("import time\nfor _ in range(600): time.sleep(0.5)")
            except Exception as exc:  # KernelDied when restarted, ConnectionLost when shut down
                thread.outcome = exc

        thread = threading.Thread(target=work, daemon=True)
        thread.outcome = None
        thread.kernel = remote
        thread.start()
        threads.append(thread)
        _wait_until(lambda: remote.model()["execution_state"] == "busy", message=f"kernel {remote.id} to be busy")
        return thread

    yield make
    for thread in threads:
        if thread.is_alive():
            try:
                thread.kernel.interrupt()
            except Exception:
                pass  # the kernel is gone already
            thread.join(30)


@pytest.fixture
def hold_before_running(tmp_path):
    """``hold_before_running(kernel)``: from now on ``kernel`` holds each cell that starts with
    ``# hold`` while IPython prepares it, before any of its code runs, until interrupted (30 s at
    most). Returns the file that appears once a cell is held. An interrupt there makes ipykernel
    end the request with ``idle`` and no reply."""

    def hold(remote):
        held = tmp_path / f"held-{remote.id[:8]}"
        remote.run(
            "import os, time\n"
            "def _hold_before_running(lines):\n"
            "    if lines and lines[0].startswith('# hold'):\n"
            f"        open({str(held)!r}, 'w').close()\n"
            "        deadline = time.time() + 30\n"
            "        while time.time() < deadline:\n"
            "            time.sleep(0.05)\n"
            "    return lines\n"
            "get_ipython().input_transformers_cleanup.append(_hold_before_running)",
            raise_on_error=True,
        )
        return held

    return hold


@pytest.fixture
def shell():
    """An InteractiveShell with the extension loaded, not connected; every connection of the
    extension's registry is removed afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    import remote_magic

    ipython = InteractiveShell.instance()
    ipython.run_line_magic("load_ext", "remote_magic")
    yield ipython
    remote_magic.registry.clear()


@pytest.fixture
def remote_shell(shell, jupyter_server, monkeypatch):
    """:func:`shell`, connected as 'test' (token via --token-env)."""
    monkeypatch.setenv("RM_TEST_TOKEN", jupyter_server.token)
    shell.run_line_magic("remote", f"connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name test")
    return shell


@pytest.fixture
def colleague(server):
    """``colleague(path, kernel_name=... | kernel_id=...)``: a session someone else opened on the
    session's server (as JupyterLab would); deleted afterwards with its kernel."""
    made = []

    def open_session(path, **options):
        model = server.sessions.create(path, **options)
        made.append(model["id"])
        return model

    yield open_session
    for session_id in made:
        try:
            server.sessions.delete(session_id)
        except NotFound:
            pass  # already gone with its kernel


# ---------------------------------------------------------------------------------- kernels per wire protocol

PROTOCOLS = ["legacy", "v1"]


@pytest.fixture(scope="module", params=PROTOCOLS)
def proto_kernel(request, jupyter_server):
    """One kernel per wire protocol, shared by the tests that keep it usable."""
    server = Server(jupyter_server.url, jupyter_server.token, protocol=request.param)
    kernel = server.start_kernel()
    yield kernel
    kernel.shutdown()
    server.close()


@pytest.fixture(params=PROTOCOLS)
def fresh_kernel(request, jupyter_server):
    """A kernel of its own (for tests that interrupt, restart or kill it), per wire protocol."""
    server = Server(jupyter_server.url, jupyter_server.token, protocol=request.param)
    kernel = server.start_kernel()
    yield kernel
    try:
        kernel.shutdown()
    except NotFound:
        pass
    server.close()
