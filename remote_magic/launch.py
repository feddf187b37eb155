"""Start a private Jupyter Server on 127.0.0.1 with a random port and token, and stop it cleanly.

A launched server never outlives the process that launched it: that process stops it at exit
(``atexit``), and on POSIX the server also loads this module as a server extension that watches
its parent and stops the server (kernels first, as on SIGTERM) if the parent dies without a word,
say killed or crashed.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import requests
import urllib3

from .errors import RemoteMagicError

if TYPE_CHECKING:
    from .registry import Connection, Registry


_PARENT_ENV = "REMOTE_MAGIC_LAUNCHER_PID"


class LaunchError(RemoteMagicError):
    """The local Jupyter Server did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LaunchedServer:
    """A ``jupyter server`` child process. The token is passed by environment, never on the command line.

    With ``tls=(certfile, keyfile)`` it serves HTTPS.
    """

    def __init__(
        self,
        root_dir: str | None = None,
        *,
        tls: tuple[str, str] | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        startup_timeout: float = 60.0,
        command: Sequence[str] = (sys.executable, "-m", "jupyter_server"),
    ):
        self.root_dir = os.path.abspath(root_dir or tempfile.mkdtemp(prefix="remote_magic-root-"))
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/"
        if tls:
            extra_args = (f"--ServerApp.certfile={tls[0]}", f"--ServerApp.keyfile={tls[1]}", *extra_args)
        self._log = tempfile.TemporaryFile()
        child_env = {**os.environ, **(env or {}), "JUPYTER_TOKEN": self.token, _PARENT_ENV: str(os.getpid())}
        args = [
            *command,
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--ServerApp.jpserver_extensions={__name__}=True",
            *extra_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--ServerApp.allow_root=True")
        self.process = subprocess.Popen(
            args, env=child_env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        atexit.register(self.stop)  # never outlive the process that launched it
        self._wait_ready(startup_timeout)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LaunchedServer {self.url} pid={self.process.pid} {state}>"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise LaunchError(f"The local Jupyter Server exited at start: {self.log_tail()}")
            try:
                if self._answers():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise LaunchError(f"The local Jupyter Server did not answer within {timeout:g}s: {self.log_tail()}")

    def _answers(self) -> bool:
        """Whether the server answers ``GET api`` (no token needed). Over TLS unverified: checking
        the certificate of this child process is the client's business."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            return requests.get(self.url + "api", timeout=2, verify=False).ok

    def log_tail(self, lines: int = 5) -> str:
        """The last lines the server printed (the token is masked)."""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace").replace(self.token, "<token>")
        return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (it shuts down its kernels first); kill it if it does not stop in time."""
        atexit.unregister(self.stop)
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def launch(
    registry: Registry, *, name: str = "local", root_dir: str | None = None, **connect_options: Any
) -> Connection:
    """Start a private Jupyter Server on 127.0.0.1 (random port and token), connect to it as
    ``name`` and make it current. It stops when that connection is closed (``%remote disconnect``,
    :meth:`Registry.remove`) or when this Python process exits. ``root_dir`` defaults to a new
    temporary directory; other options go to :meth:`Registry.connect`."""
    missing = [m for m in ("jupyter_server", "ipykernel") if importlib.util.find_spec(m) is None]
    if missing:
        raise LaunchError(
            f"Launching a local server needs {' and '.join(missing)} here: pip install 'remote_magic[launch]'."
        )
    if root_dir is not None and not os.path.isdir(os.path.expanduser(root_dir)):
        raise LaunchError(f"No local directory {root_dir!r} to serve; create it or choose another --root.")
    server = LaunchedServer(os.path.expanduser(root_dir) if root_dir else None)
    try:
        connection = registry.connect(server.url, name=name, token=server.token, **connect_options)
    except BaseException:
        server.stop()
        raise
    _LAUNCHED[connection] = server
    connection.on_close.append(server.stop)
    return connection


def launched_server(connection: Connection) -> LaunchedServer | None:
    """The server :func:`launch` started for ``connection``, if it did."""
    return _LAUNCHED.get(connection)


_LAUNCHED: weakref.WeakKeyDictionary[Connection, LaunchedServer] = weakref.WeakKeyDictionary()



# ---------------------------------------------------------------------------- inside the launched server


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Stop the server with SIGTERM (its clean shutdown: kernels first) once its launcher is gone."""
    launcher = int(os.environ.get(_PARENT_ENV) or 0)
    if not launcher or os.name != "posix":  # Windows keeps a dead parent's pid: rely on atexit there
        return

    def watch() -> None:
        while os.getppid() == launcher:
            time.sleep(1.0)
        serverapp.log.warning("The process that launched this server is gone; stopping.")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="remote_magic-stop-with-launcher", daemon=True).start()
