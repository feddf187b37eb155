"""Cold start and REST call counting for the benchmark suite.

A cold start runs in a fresh Python subprocess: import the client, connect, and get the first
``1+1`` result, on a new kernel (started by the client) and on a running one. The child reads the
token from stdin (never from its environment or command line) and prints its own timing.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import requests
from peers import Datalayer, missing

_TIMED = """
import sys, time
url, token, kernel_id = sys.argv[1], sys.stdin.readline().strip(), sys.argv[2] or None
start = time.perf_counter()
{body}
print(time.perf_counter() - start)
{cleanup}
"""

CHILDREN = {
    "remote_magic": (
        """
        from remote_magic import Server
        server = Server(url, token)
        kernel = server.kernel(kernel_id) if kernel_id else server.start_kernel()
        assert kernel.run("1+1").result["text/plain"] == "2"
        """,
        "kernel_id or kernel.shutdown()",
    ),
    "datalayer client": (
        """
        from jupyter_kernel_client import JupyterKernelClient
        client = JupyterKernelClient(server_url=url.rstrip("/"), token=token, kernel_id=kernel_id)
        client.start()
        assert client.execute("1+1")["outputs"][0]["data"]["text/plain"] == "2"
        """,
        "client.stop(shutdown_kernel=not kernel_id)",
    ),
}


def cold_start(name: str, url: str, token: str, kernel_id: str | None) -> float:
    body, cleanup = CHILDREN[name]
    code = _TIMED.format(body=textwrap.dedent(body), cleanup=cleanup)
    done = subprocess.run(
        [sys.executable, "-c", code, url, kernel_id or ""], input=token + "\n", capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"cold start of {name} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[0])


def cold_starts(report, launched, rounds: int) -> None:
    """Each client ``rounds`` times on a new kernel and on a running one, alternating."""
    names = [name for name in CHILDREN if name == "remote_magic" or not missing("jupyter_kernel_client")]
    running = Datalayer(launched.url, launched.token)  # any running kernel will do
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                for kind, kernel_id in (("new kernel", None), ("running kernel", running.client.id)):
                    samples.setdefault((kind, name), []).append(cold_start(name, launched.url, launched.token, kernel_id))
    finally:
        running.close()
    for (kind, name), values in samples.items():
        values.sort()
        report.add(f"cold start, {kind}", name, "direct", f"{values[len(values) // 2]:.2f} s (max {values[-1]:.2f})")


class RestCounter:
    """Counts the HTTP requests made through ``requests`` while a block runs."""

    def __init__(self) -> None:
        self.calls = 0
        original = requests.Session.send

        def send(session, request, **kwargs):
            self.calls += 1
            return original(session, request, **kwargs)

        requests.Session.send = send

    @contextlib.contextmanager
    def count(self, what: str, into: dict[str, int]) -> Iterator[None]:
        before = self.calls
        yield
        into[what] = self.calls - before
