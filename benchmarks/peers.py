"""What the benchmark compares remote_magic with, and the links it measures over.

Peers a user would pick instead: datalayer's ``jupyter-kernel-client`` (a websocket client of a
Jupyter Server) and ipyparallel's ``%%px`` on a one-engine local cluster (ZMQ, no Jupyter Server).
Both are benchmark-only dependencies (the ``bench`` extra, installed by ``make benchmark``); a
missing one is skipped with a note. Links: direct, a TCP forwarder (an SSH tunnel), JupyterHub's
configurable-http-proxy (npm, cached under ``.cache/chp`` by ``make benchmark``) and a forwarder
delaying each direction by 50 ms.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
CHP = ROOT / ".cache" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
SLOW_DELAY = 0.05  # seconds each way


class Datalayer:
    """datalayer's ``jupyter-kernel-client``: ``JupyterKernelClient.execute`` on one kernel."""

    def __init__(self, url: str, token: str, kernel_id: str | None = None):
        from jupyter_kernel_client import JupyterKernelClient

        self.client = JupyterKernelClient(server_url=url.rstrip("/"), token=token, kernel_id=kernel_id)
        self.owned = kernel_id is None
        self.client.start()

    def run(self, code: str) -> int:
        reply = self.client.execute(code)
        assert reply["status"] == "ok", reply
        return sum(
            len(o.get("text", "")) + sum(len(v) for v in o.get("data", {}).values()) for o in reply["outputs"]
        )

    def close(self) -> None:
        self.client.stop(shutdown_kernel=self.owned)


class Ipyparallel:
    """ipyparallel's ``%%px`` cell magic on a one-engine local cluster, through a real IPython shell."""

    def __init__(self, shell) -> None:
        import ipyparallel

        self.shell = shell
        self.cluster = ipyparallel.Cluster(n=1, log_level=40)
        self.client = self.cluster.start_and_connect_sync()
        self.client.wait_for_engines(1, timeout=120)
        view = self.client[:]
        view.block = True  # %%px waits for the result, as %%remote does
        view.activate()

    def run(self, code: str) -> int:
        result = self.shell.run_cell("%%px\n" + code, store_history=False)
        if not result.success:
            raise SystemExit(f"%%px failed: {result.error_in_exec!r}")
        return 0

    def close(self) -> None:
        self.client.close()
        self.cluster.stop_cluster_sync()


def missing(module: str) -> str | None:
    """None when ``module`` imports, else a note saying how to get it."""
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed (make benchmark installs the 'bench' extra)"
    return None


class Chp:
    """configurable-http-proxy routing everything to the server, as JupyterHub's proxy does."""

    def __init__(self, target: str):
        self.port = _free_port()
        env = dict(os.environ, CONFIGPROXY_AUTH_TOKEN=os.urandom(16).hex())
        self.process = subprocess.Popen(
            [str(CHP), "--ip", "127.0.0.1", "--port", str(self.port), "--api-ip", "127.0.0.1",
             "--api-port", str(_free_port()), "--default-target", target.rstrip("/"), "--log-level", "error"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise SystemExit("configurable-http-proxy did not start") from None
                time.sleep(0.1)

    def url_for(self, url: str) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    @staticmethod
    def unavailable() -> str | None:
        if CHP.exists():
            return None
        if shutil.which("npm") is None:
            return "npm not found: no configurable-http-proxy column"
        return "configurable-http-proxy is not installed (make benchmark installs it under .cache/chp)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Forwarder:
    """A TCP forwarder (``tests/netfaults.TcpForwarder``) in a process of its own, as an SSH tunnel
    or a reverse proxy is: forwarding threads inside the benchmark's process would take the GIL
    from the clients being measured. ``delay``: seconds added each way."""

    _SCRIPT = (
        "import sys; sys.path.insert(0, sys.argv[1]); from netfaults import TcpForwarder; "
        "f = TcpForwarder(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])); print(f.port, flush=True); "
        "sys.stdin.read(); f.close()"
    )

    def __init__(self, url: str, delay: float = 0.0):
        parts = urlsplit(url)
        target = [parts.hostname or "127.0.0.1", str(parts.port or 80)]
        self.process = subprocess.Popen(
            [sys.executable, "-c", self._SCRIPT, str(ROOT / "tests"), *target, str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            self.close()
            raise SystemExit("the TCP forwarder did not start")
        self.port = int(line)

    def url_for(self, url: str) -> str:
        return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{self.port}"))

    def close(self) -> None:
        try:
            self.process.stdin.close()  # its cue to stop
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


def open_links(url: str) -> tuple[dict[str, object], list[str]]:
    """The links to the server at ``url``, by name (each has ``url_for`` and ``close``), and notes
    on links that could not be set up."""
    links: dict[str, object] = {"direct": None, "forwarder": Forwarder(url)}
    notes = []
    why = Chp.unavailable()
    if why is None:
        links["chp"] = Chp(url)
    else:
        notes.append(why)
    links["50 ms link"] = Forwarder(url, delay=SLOW_DELAY)
    return links, notes


def link_url(link: object, url: str) -> str:
    return url if link is None else link.url_for(url)
