"""Start a private Jupyter Server on 127.0.0.1 with a random port and token, and stop it cleanly.

A launched server never outlives the process that launched it, and nothing but that process stops
it. It runs in a session of its own (POSIX), so an interrupt of the launcher's process group
(JupyterLab's Stop button, Ctrl-C in a terminal) does not reach it. The launcher stops it at exit
(``atexit``) or on disconnect; and the server loads this module as a server extension that watches
a pipe only the launcher holds open: when the launcher is gone however it ended (killed, crashed),
the pipe reads end-of-file and the server stops (kernels first, as on SIGTERM).

The server's environment is the launcher's without the variables that hold Jupyter tokens (those
of the launcher's connections and the usual ``JUPYTER_TOKEN`` and friends). Its own token reaches it
through a pipe named by ``JUPYTER_TOKEN_FILE``, so neither the server's environment nor its kernels'
ever contain it.
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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import requests
import urllib3

from .errors import RemoteMagicError

if TYPE_CHECKING:
    from .connection import Connection
    from .registry import Registry


_LIFELINE_ENV = "REMOTE_MAGIC_LIFELINE_FD"

#: Variables never passed to a launched server (and so to its kernels): they hold Jupyter tokens.
TOKEN_VARIABLES = frozenset({"JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN"})


class LaunchError(RemoteMagicError):
    """The local Jupyter Server did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LaunchedServer:
    """A ``jupyter server`` child process. The token is passed through a pipe, never on the command
    line or in the environment.

    With ``tls=(certfile, keyfile)`` it serves HTTPS. ``hide`` names more environment variables to
    keep from it (besides :data:`TOKEN_VARIABLES`).
    """

    def __init__(
        self,
        root_dir: str | None = None,
        *,
        tls: tuple[str, str] | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        hide: Iterable[str] = (),
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
        hidden = TOKEN_VARIABLES.union(hide)
        child_env = {name: value for name, value in os.environ.items() if name not in hidden}
        child_env.update(env or {})
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
        self._lifeline: int | None = None
        if os.name == "posix":
            self.process = self._start_posix(args, child_env)
        else:  # no fd passing: the token goes by environment, the watch relies on atexit
            child_env["JUPYTER_TOKEN"] = self.token
            self.process = subprocess.Popen(
                args, env=child_env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        atexit.register(self.stop)  # never outlive the process that launched it
        self._wait_ready(startup_timeout)

    def _start_posix(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start the server in a new session with two pipes: one holding its token (read once as
        ``JUPYTER_TOKEN_FILE``), and its lifeline, whose write end only this process holds."""
        token_read, token_write = os.pipe()
        os.write(token_write, self.token.encode())  # a few bytes: the pipe's buffer holds them
        os.close(token_write)
        watch_read, self._lifeline = os.pipe()
        env = {**env, "JUPYTER_TOKEN_FILE": f"/dev/fd/{token_read}", _LIFELINE_ENV: str(watch_read)}
        try:
            return subprocess.Popen(
                args,
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=(token_read, watch_read),
                start_new_session=True,  # out of reach of an interrupt of this process's group
            )
        finally:
            os.close(token_read)
            os.close(watch_read)

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
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
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
    server = LaunchedServer(os.path.expanduser(root_dir) if root_dir else None, hide=registry.token_variables())
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
    """Read the token now and take it out of the environment (kernels and terminals inherit that);
    stop the server with SIGTERM (its clean shutdown: kernels first) once the launcher's lifeline
    reads end-of-file."""
    if not getattr(serverapp, "identity_provider", serverapp).token:  # read it before it goes
        raise SystemExit("remote_magic: this launched server got no token; it will not serve without one.")
    os.environ.pop("JUPYTER_TOKEN", None)  # where it came by environment (not POSIX)
    token_file = os.environ.pop("JUPYTER_TOKEN_FILE", "")
    if token_file.startswith("/dev/fd/"):
        _close_quietly(int(token_file[len("/dev/fd/"):]))
    lifeline = os.environ.pop(_LIFELINE_ENV, "")
    if not lifeline:
        return

    def watch() -> None:
        try:
            while os.read(int(lifeline), 1):
                pass
        except OSError:
            pass
        serverapp.log.warning("The process that launched this server is gone; stopping.")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="remote_magic-stop-with-launcher", daemon=True).start()


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
