"""A connection to one kernel known only by its connection file (``%remote connect --existing``).

It registers like a server's connection, so ``%%remote`` cells, ``interrupt`` and ``shutdown`` work
on it unchanged; what needs a server (sessions, other kernels, kernelspecs) says so in one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .bare import BareKernel, BareServer, find_connection_file
from .errors import NotOffered, UsageError
from .outputs import ExecutionResult
from .registry import Registry


class ExistingConnection:
    """A registered bare kernel: the same calls as :class:`~remote_magic.connection.Connection`."""

    def __init__(self, name: str, kernel: BareKernel, *, safe_outputs: bool = False):
        self.name = name
        self.kernel: BareKernel | None = kernel
        self.server: BareServer = kernel.server
        self.kernel_name = kernel.file.kernel_name or None
        self.token_env: str | None = None
        self.password_env: str | None = None
        self.safe_outputs = safe_outputs
        self.session_id: str | None = None
        self.started: set[str] = set()  # it never starts kernels
        self.attached = {kernel.id}
        self.on_close: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"<ExistingConnection {self.name!r} {self.server.file.path}>"

    @property
    def connection_file(self) -> str:
        return self.server.file.path

    def default_kernel(self) -> BareKernel:
        if self.kernel is None:
            raise UsageError(
                f"The kernel of {self.name!r} was shut down; connect to another with %remote connect --existing."
            )
        return self.kernel

    def kernel_for(self, choice: str | None = None) -> BareKernel:
        kernel = self.default_kernel()
        if choice and not kernel.id.startswith(choice):
            self._refuse(f"other kernels ({choice!r})")
        return kernel

    find_kernel = kernel_for

    def _refuse(self, what: str) -> Any:
        raise NotOffered(
            f"{self.name!r} is one kernel reached through its connection file: it offers no {what}; "
            "connect to a Jupyter server for that."
        )

    def attach(self, target: str) -> Any:
        return self._refuse("other kernels or sessions to attach")

    def start_kernel(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("way to start kernels")

    start_session = start_kernel

    def switch_kernel(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("sessions to switch")

    def reattach(self) -> None:
        return None

    def run(self, code: str, **options: Any) -> ExecutionResult:
        """Run ``code`` on the kernel (see :meth:`RemoteKernel.run`)."""
        return self.default_kernel().run(code, **options)

    def shutdown_kernel(self, target: str | None = None) -> str:
        """Ask the kernel to exit; this connection then has no kernel."""
        kernel = self.kernel_for(target)
        kernel.shutdown()
        self.attached.clear()
        self.kernel = None
        return kernel.id

    def leaves_running(self, *, stop_started: bool = True) -> dict[str, str]:
        if self.kernel is None:
            return {}
        return {self.kernel.id: "reached through its connection file, not started here"}

    def stop_unreachable(self) -> list[str]:
        return []

    def close(self, *, stop_started: bool = True) -> list[str]:
        """Close the ZMQ sockets; the kernel keeps running (it was not started here)."""
        self.server.close()
        while self.on_close:
            self.on_close.pop(0)()
        return []


def connect_existing(
    registry: Registry,
    target: str | None = None,
    *,
    name: str | None = None,
    directory: str | os.PathLike[str] | None = None,
    safe_outputs: bool = False,
) -> ExistingConnection:
    """Register the kernel of a connection file and make it current, as ``jupyter console
    --existing`` finds it: ``target`` None = the newest file of the runtime directory; else a
    path, a file name or a kernel id (or its start). Needs jupyter_client (and pyzmq)."""
    file = find_connection_file(target, directory)
    kernel = BareKernel(file)
    kernel.channel.open()  # raises at once when nothing answers there
    connection = ExistingConnection(name or f"kernel-{file.kernel_id[:8]}", kernel, safe_outputs=safe_outputs)
    registry.add(connection)  # type: ignore[arg-type]
    return connection


def describe_existing(connection: ExistingConnection) -> str:
    """The one line ``connect --existing`` prints."""
    kernel = connection.default_kernel()
    info = (kernel.channel.kernel_info or {}).get("content", {})
    language = (info.get("language_info") or {}).get("name") or "?"
    implementation = info.get("implementation") or "kernel"
    return (
        f"Connected {connection.name!r}: {Path(connection.connection_file).name} ({implementation}, {language}; "
        "no server: no sessions, no other kernels, no restart; file commands go through the kernel)"
    )
