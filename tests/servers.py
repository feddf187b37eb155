"""Fixtures' servers other than Jupyter Server 2 with a token: each started for real on 127.0.0.1.

Servers that cannot share the test environment (Notebook 6, Enterprise Gateway, jupyverse) run from
their own cached virtual environments, made by ``make servers`` (``.venv-nb6/``, ``.venv-eg/``,
``.venv-jupyverse/``). A missing one skips its tests with the reason, except on CI (``CI=true``),
where it fails them: CI must test every server.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

import remote_magic
from remote_magic.launch import TOKEN_VARIABLES, free_port
from remote_magic.panel_model import PanelModel

ROOT = Path(__file__).resolve().parent.parent


#: The password of the :func:`locked` server.
PASSWORD = "open-" + "5e5a" * 6


def server_root(tmp_path_factory: Any, name: str) -> str:
    """A new directory for a server to serve, holding ``hello.txt``."""
    root = tmp_path_factory.mktemp(name)
    (root / "hello.txt").write_text("hello from the server\n")
    return str(root)


def missing(reason: str) -> None:
    """A component the tests need is not here: skip with ``reason``, but fail on CI (``CI=true``),
    which must test everything."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def venv_python(name: str) -> str:
    """The Python of the cached venv ``.venv-<name>/`` (``make servers`` creates it)."""
    if not (ROOT / f".venv-{name}" / ".installed").exists():
        missing(f".venv-{name}/ is missing: run `make servers` to create it")
    return str(ROOT / f".venv-{name}" / "bin" / "python")


class ServerProcess:
    """A server child process on 127.0.0.1 (``token`` is its token, if any); the token and
    ``secrets`` are masked in :meth:`log_text`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        ready: Callable[[str], bool],
        env: dict[str, str] | None = None,
        token: str = "",
        secrets: Sequence[str] = (),
        cwd: str | None = None,
        startup_timeout: float = 90.0,
    ):
        self.port = port
        self.token = token
        self.url = f"http://127.0.0.1:{port}/"
        self.secrets = [s for s in (token, *secrets) if s]
        self.log = tempfile.TemporaryFile()
        child_env = {k: v for k, v in os.environ.items() if k not in TOKEN_VARIABLES}
        child_env.update(env or {})
        self.process = subprocess.Popen(
            list(argv),
            env=child_env,
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stop() can end what it started too
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{argv[1:3]} exited at start: {self.log_text()[-2000:]}")
            try:
                if ready(self.url):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{argv[1:3]} did not answer within {startup_timeout:g}s")

    def log_text(self) -> str:
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        for secret in self.secrets:
            text = text.replace(secret, "<secret>")
        return text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()


def _answers(path: str, **headers: str) -> Callable[[str], bool]:
    return lambda url: requests.get(url + path, headers=headers, timeout=2).status_code < 500


def _allow_root() -> list[str]:
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def notebook6(root: str, token: str = "") -> ServerProcess:
    """The classic Notebook 6 server (``notebook<7``) with ``token`` ('' for none)."""
    port = free_port()
    return ServerProcess(
        [
            venv_python("nb6"),
            "-m",
            "notebook",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--port-retries=0",
            f"--NotebookApp.token={token}",
            f"--notebook-dir={root}",
            *_allow_root(),
        ],
        port=port,
        ready=_answers("api"),
        token=token,
    )


def kernel_gateway(token: str) -> ServerProcess:
    """Jupyter Kernel Gateway (from the test environment) with ``token`` and its default of
    forbidding kernel and session listings."""
    port = free_port()
    env = {"KG_AUTH_TOKEN": token, "KG_LIST_KERNELS": "False"}
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "kernel_gateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={port}",
            "--KernelGatewayApp.port_retries=0",
        ],
        port=port,
        env=env,
        ready=_answers("api", Authorization=f"token {token}"),
        token=token,
        cwd=tempfile.mkdtemp(prefix="remote_magic-gateway-"),  # its kernels' working directory
    )


def enterprise_gateway(token: str, *, unauthorized_users: Sequence[str] = ("mallory",)) -> ServerProcess:
    """Jupyter Enterprise Gateway with local kernels and a token (``EG_AUTH_TOKEN``); kernels are
    refused to ``unauthorized_users`` (its default refuses root, which a test run may be)."""
    port = free_port()
    return ServerProcess(
        [
            venv_python("eg"),
            "-m",
            "enterprise_gateway",
            "--EnterpriseGatewayApp.ip=127.0.0.1",
            f"--EnterpriseGatewayApp.port={port}",
            "--EnterpriseGatewayApp.port_retries=0",
            f"--EnterpriseGatewayApp.unauthorized_users={set(unauthorized_users)!r}",
        ],
        port=port,
        env={"EG_AUTH_TOKEN": token},
        ready=_answers("api", Authorization=f"token {token}"),
        token=token,
        cwd=tempfile.mkdtemp(prefix="remote_magic-gateway-"),  # its kernels' working directory
    )


def new_token() -> str:
    return secrets.token_hex(24)


def jupyter_server(root: str, *args: str, secrets: Sequence[str] = ()) -> ServerProcess:
    """Jupyter Server 2 from the test environment with ``args`` (its auth options, say)."""
    port = free_port()
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={root}",
            *_allow_root(),
            *args,
        ],
        port=port,
        ready=_answers("api"),
        secrets=secrets,
    )


def tokenless_server(root: str) -> ServerProcess:
    """Jupyter Server 2 with neither token nor password (what some run on 127.0.0.1)."""
    return jupyter_server(root, "--IdentityProvider.token=")


def password_server(root: str, password: str) -> ServerProcess:
    """Jupyter Server 2 that logs users in with ``password`` only (no token)."""
    from jupyter_server.auth import passwd

    return jupyter_server(
        root, "--IdentityProvider.token=", f"--PasswordIdentityProvider.hashed_password={passwd(password)}", secrets=[password]
    )


def exercise(shell: Any, capsys: Any, connect: str, *, offers: dict[str, bool], uploads: bool = True) -> str:
    """What a user does with a server, through the magics: connect, cells with outputs and an error,
    an interrupt, files (ls, cat, upload, download), kernels, sessions, disconnect; what ``offers`` says is absent must fail
    with one line; so must an upload where ``uploads`` is False. The server's root
    holds ``hello.txt``. Returns the line ``connect`` printed."""
    from remote_magic.errors import (
        ExecutionTimeout,
        NotOffered,
        RemoteExecutionError,
        ServerError,
    )

    shell.run_line_magic("remote", f"connect {connect} --name srv")
    line = capsys.readouterr().out.strip()
    assert line.startswith("Connected 'srv'") and "\n" not in line, line
    result = shell.run_cell("%%remote\nimport sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7")
    shown = capsys.readouterr()
    assert result.success and repr(result.result) == "42", result.error_in_exec
    assert "out\n" in shown.out and "err\n" in shown.err
    failed = shell.run_cell("%%remote\nraise ValueError('bad value')")
    assert isinstance(failed.error_in_exec, RemoteExecutionError) and failed.error_in_exec.ename == "ValueError"
    stopped = shell.run_cell("%%remote --timeout 2\nimport time\ntime.sleep(60)")  # interrupts at the deadline
    assert isinstance(stopped.error_in_exec, ExecutionTimeout)
    assert "KeyboardInterrupt" in capsys.readouterr().err
    assert shell.run_cell("%%remote --timeout 30\n'alive'").success
    interrupted = _interrupted_by_the_magic(shell, capsys)
    assert interrupted.ename == "KeyboardInterrupt", interrupted
    own = shell.run_line_magic("remote", "connections")[0]["kernel"]
    assert own in [row["id"] for row in shell.run_line_magic("remote", "kernels")]
    panel = PanelModel(remote_magic.registry)
    panel.refresh()
    assert panel.refresh_error == "" and own in [row["id"] for row in panel.kernels], panel.refresh_error

    def absent(command: str) -> None:
        with pytest.raises(NotOffered) as info:
            shell.run_line_magic("remote", command)
        assert "\n" not in str(info.value) and "does not offer" in str(info.value), info.value

    if offers["sessions"]:
        assert isinstance(list(shell.run_line_magic("remote", "sessions")), list)
    else:
        absent("sessions")
    local = Path(tempfile.mkdtemp(prefix="remote_magic-files-"))
    (local / "up.bin").write_bytes(bytes(range(256)) * 64)
    if offers["contents"]:
        assert "hello.txt" in [row["name"] for row in shell.run_line_magic("remote", "ls")]
        assert "hello from the server" in shell.run_line_magic("remote", "cat hello.txt")
        if uploads:
            shell.run_line_magic("remote", f"upload {local / 'up.bin'} up-{local.name}.bin")
            shell.run_line_magic("remote", f"download up-{local.name}.bin {local / 'down.bin'}")
            assert (local / "down.bin").read_bytes() == (local / "up.bin").read_bytes()
        else:  # the server stores the upload wrongly: the check after it says so
            with pytest.raises(ServerError, match="came out different") as info:
                shell.run_line_magic("remote", f"upload {local / 'up.bin'} up-{local.name}.bin")
            assert "\n" not in str(info.value) and "--through-kernel" in str(info.value)
            shell.run_line_magic("remote", f"upload {local / 'up.bin'} up-{local.name}.bin --through-kernel --force")
            shell.run_line_magic("remote", f"download up-{local.name}.bin {local / 'down.bin'} --through-kernel")
            assert (local / "down.bin").read_bytes() == (local / "up.bin").read_bytes()
    else:  # no Contents API: the file commands go through the kernel, and say so
        name = f"up-{local.name}.bin"
        capsys.readouterr()
        shell.run_line_magic("remote", f"upload {local / 'up.bin'} {name}")
        assert "(through the kernel: this server has no contents API)" in capsys.readouterr().out
        assert name in [row["name"] for row in shell.run_line_magic("remote", "ls")]
        shell.run_line_magic("remote", f"download {name} {local / 'down.bin'}")
        assert (local / "down.bin").read_bytes() == (local / "up.bin").read_bytes()
    capsys.readouterr()
    shell.run_line_magic("remote", "disconnect")
    assert "stopped 1 kernel" in capsys.readouterr().out
    return line


def _interrupted_by_the_magic(shell: Any, capsys: Any) -> Any:
    """Run a long loop on the connection's kernel from another thread, ``%remote interrupt`` it once
    it has started, and return the remote error the loop ended with (None if it was not stopped)."""
    kernel = remote_magic.registry.get().kernel_for(None)
    started, outcome = threading.Event(), []
    looping = "print('started', flush=True)\nimport time\nfor _ in range(600): time.sleep(0.1)"
    worker = threading.Thread(
        target=lambda: outcome.append(kernel.run(looping, on_message=lambda msg: started.set() if msg["msg_type"] == "stream" else None)),
        daemon=True,
    )
    worker.start()
    assert started.wait(60), "the loop never started"
    shell.run_line_magic("remote", "interrupt")
    assert "Interrupted kernel" in capsys.readouterr().out
    worker.join(30)
    assert outcome, "the loop was not stopped by the interrupt"
    return outcome[0].error()


def documented() -> dict[str, dict[str, str]]:
    """The capability table of docs/compatibility.md: ``{target: {column: cell}}``."""
    text = (ROOT / "docs" / "compatibility.md").read_text()
    lines = [line for line in text.split("<!-- capabilities:", 1)[1].splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row)) for row in rows}


def check_documented(target: str, server: Any, protocol: str | None = None) -> None:
    """docs/compatibility.md's row ``target`` says what the detection found on ``server`` (and the
    protocol a kernel ended up with, if given)."""
    row = documented()[target]
    caps = server.capabilities
    found = {"kind": caps.kind, **{name.replace("_", " "): "yes" if offered else "no" for name, offered in caps.offers().items()}}
    assert {key: row[key] for key in found} == found, f"docs/compatibility.md is wrong about {target}"
    if protocol is not None:
        assert row["websocket protocol"] == protocol, f"docs/compatibility.md is wrong about {target}'s protocol"


def jupyverse(root: str, token: str) -> ServerProcess:
    """jupyverse (its own venv) with token auth, serving ``root``; its JupyterLab front-end is off."""
    port = free_port()
    return ServerProcess(
        [
            str(Path(venv_python("jupyverse")).parent / "jupyverse"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--set",
            "auth.mode=token",
            "--set",
            f"auth.token={token}",
            "--disable",
            "jupyterlab",
            "--disable",
            "lab",
        ],
        port=port,
        cwd=root,
        ready=_answers("api/kernelspecs"),
        token=token,
    )


def execute_cells(sources: list[str], folder: Path, *, client: Any = None, allow_errors: bool = False) -> Any:
    """A notebook of code cells ``sources`` executed by nbclient (or ``client``, a subclass) in a
    real local kernel started in ``folder`` (it inherits this process's environment)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (client or NotebookClient)(nb, timeout=120, kernel_name="python3", allow_errors=allow_errors, resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def run_in_notebook(tmp_path: Path, connect: str) -> list[Any]:
    """Connect, run a cell, list kernels and disconnect from a notebook executed by nbclient in a
    real local kernel (which inherits this process's environment); checks each cell's output."""
    sources = [
        "%load_ext remote_magic",
        f"%remote connect {connect} --name nb",
        "%%remote\nprint('from the notebook')\n6 * 7",
        "%remote kernels",
        "%remote disconnect",
    ]
    outputs = [cell["outputs"] for cell in execute_cells(sources, tmp_path).cells]
    assert outputs[1][0]["text"].startswith("Connected 'nb'"), outputs[1]
    assert outputs[2][0]["text"] == "from the notebook\n" and outputs[2][1]["data"]["text/plain"] == "42", outputs[2]
    assert "Kernels on" in str(outputs[3]), outputs[3]
    assert outputs[4][0]["text"].startswith("Disconnected 'nb'; stopped 1 kernel"), outputs[4]
    return outputs


@pytest.fixture(scope="module")
def locked(tmp_path_factory: Any) -> Any:
    """A Jupyter Server that logs users in with :data:`PASSWORD` only, for one test module."""
    process = password_server(server_root(tmp_path_factory, "password-root"), PASSWORD)
    yield process
    process.stop()
