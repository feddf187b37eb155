"""Shared fixtures: a real Jupyter Server on 127.0.0.1 with a random port and token, real kernels."""

from __future__ import annotations

import os
import tempfile

import pytest

# Keep the test run's servers out of the user's own runtime directory (discovery tests rely on it).
os.environ.setdefault("JUPYTER_RUNTIME_DIR", tempfile.mkdtemp(prefix="remote_magic-runtime-"))
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="remote_magic-ipython-"))
os.environ.pop("JUPYTER_TOKEN", None)
os.environ.pop("JUPYTER_SERVER_URL", None)

from remote_magic import Registry, Server  # noqa: E402
from remote_magic.launch import LaunchedServer  # noqa: E402


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
def registry():
    """A private registry; every connection is removed (and kernels it started stopped) afterwards."""
    reg = Registry()
    yield reg
    reg.clear()
