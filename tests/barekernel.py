"""Kernels started by hand from a connection file, as ``jupyter console`` or a script would: no
server knows them. Stopped by pid afterwards."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator

from remote_magic.connfiles import ConnectionFile, heartbeat_answers
from remote_magic.discovery import runtime_dir
from remote_magic.errors import RemoteMagicError
from remote_magic.launch import free_port


class BareKernelProcess:
    """``python -m ipykernel_launcher -f FILE`` in the runtime directory; ``path`` is FILE."""

    def __init__(self, name: str):
        self.path = str(runtime_dir() / f"kernel-{name}.json")
        self.kernel_id = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ipykernel_launcher", "-f", self.path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if "TOKEN" not in k},
        )
        self.pid = self.process.pid
        deadline = time.monotonic() + 60
        while not (os.path.exists(self.path) and _answers(self.path)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the bare kernel {name} did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        if os.path.exists(self.path):
            os.remove(self.path)


def _answers(path: str) -> bool:
    try:
        return heartbeat_answers(ConnectionFile.read(path), timeout=0.5)
    except (OSError, ValueError, RemoteMagicError):
        return False  # being written


def stale_connection_file(name: str) -> str:
    """A connection file whose kernel is gone: ports nobody listens on."""
    path = runtime_dir() / f"kernel-{name}.json"
    ports = {f"{c}_port": free_port() for c in ("shell", "iopub", "stdin", "control", "hb")}
    path.write_text(json.dumps({**ports, "ip": "127.0.0.1", "key": secrets.token_hex(8), "transport": "tcp",
                                "signature_scheme": "hmac-sha256", "kernel_name": "python3"}))
    return str(path)


def running_bare_kernel() -> Iterator[BareKernelProcess]:
    """For a fixture: a kernel only its connection file knows (id ``bare-<random>``), stopped after."""
    kernel = BareKernelProcess(f"bare-{secrets.token_hex(4)}")
    yield kernel
    kernel.stop()
