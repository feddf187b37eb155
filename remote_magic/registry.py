"""Named connections to servers, one of them current. Nothing here is ever written to disk."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from .errors import AuthenticationError, ConnectionNotFound, UsageError
from .kernel import RemoteKernel
from .outputs import ExecutionResult
from .server import Server


class Connection:
    """A registered server with its default kernel and the kernels this connection started."""

    def __init__(self, name: str, server: Server, *, kernel_name: str | None = None):
        self.name = name
        self.server = server
        self.kernel_name = kernel_name
        self.kernel: RemoteKernel | None = None
        self.started: set[str] = set()  # ids of kernels this connection started itself
        self.on_close: list[Callable[[], None]] = []  # called once the connection is closed

    def __repr__(self) -> str:
        kernel = self.kernel.id if self.kernel else None
        return f"<Connection {self.name!r} {self.server.url} kernel={kernel}>"

    def default_kernel(self) -> RemoteKernel:
        """The kernel cells run on: the one chosen before, else a new one of ``kernel_name``."""
        if self.kernel is None:
            self.start_kernel(self.kernel_name)
        assert self.kernel is not None
        return self.kernel

    def start_kernel(
        self, name: str | None = None, path: str | None = None, *, make_default: bool = True
    ) -> RemoteKernel:
        """Start a kernel, remember it as started here, and (by default) make it the default."""
        kernel = self.server.start_kernel(name or self.kernel_name, path)
        self.started.add(kernel.id)
        if make_default:
            self.kernel = kernel
        return kernel

    def kernel_for(self, choice: str | None = None) -> RemoteKernel:
        """The kernel a cell asks for: the default one; or a running kernel whose id starts with
        ``choice``; or this connection's kernel of kernelspec ``choice`` (started on first use)."""
        if not choice:
            return self.default_kernel()
        running = self.server.kernels.list()
        by_id = [k["id"] for k in running if k["id"].startswith(choice)]
        if len(by_id) == 1:
            return RemoteKernel(self.server, by_id[0])
        default_id = self.kernel.id if self.kernel else None
        mine = [k["id"] for k in running if k.get("name") == choice and (k["id"] == default_id or k["id"] in self.started)]
        if mine:
            return RemoteKernel(self.server, default_id if default_id in mine else mine[0])
        return self.start_kernel(choice, make_default=False)

    def attach(self, kernel_id: str) -> RemoteKernel:
        """Make an existing kernel the default; it is never stopped unless asked explicitly."""
        self.kernel = self.server.kernel(kernel_id)
        return self.kernel

    def run(self, code: str, **options: Any) -> ExecutionResult:
        """Run ``code`` on the default kernel (see :meth:`RemoteKernel.run`)."""
        return self.default_kernel().run(code, **options)

    def close(self, *, stop_started: bool = True) -> list[str]:
        """Close websockets; stop the kernels this connection started (not attached ones).
        Returns the ids of the kernels stopped."""
        stopped = []
        if stop_started:
            for kernel_id in sorted(_still_running(self.server, self.started)):
                self.server.forget_channel(kernel_id)
                self.server.kernels.shutdown(kernel_id)
                stopped.append(kernel_id)
        self.started.clear()
        self.kernel = None
        self.server.close()
        while self.on_close:
            self.on_close.pop(0)()
        return stopped


def _still_running(server: Server, kernel_ids: set[str]) -> set[str]:
    """Which of ``kernel_ids`` the server still runs. Where listing kernels is forbidden (a Kernel
    Gateway by default) each is asked for by id; none if the server is gone."""
    try:
        return kernel_ids & {k["id"] for k in server.kernels.list()}
    except AuthenticationError:
        pass  # the token was proven at connect: listing itself is forbidden
    except Exception:  # the server is gone: nothing left to stop
        return set()
    running = set()
    for kernel_id in kernel_ids:
        try:
            server.kernels.get(kernel_id)
        except Exception:
            continue
        running.add(kernel_id)
    return running


class Registry:
    """Named connections, one current."""

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}
        self._current: str | None = None

    def __repr__(self) -> str:
        return f"<Registry {list(self._connections)} current={self._current!r}>"

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections.values()))

    def __len__(self) -> int:
        return len(self._connections)

    def __contains__(self, name: object) -> bool:
        return name in self._connections

    @property
    def current(self) -> Connection | None:
        return self._connections.get(self._current) if self._current else None

    def connect(
        self,
        url: str,
        *,
        name: str | None = None,
        token: str | None = None,
        token_env: str | None = None,
        kernel_name: str | None = None,
        **server_options: Any,
    ) -> Connection:
        """Check the server answers with this token, register it as ``name`` and make it current.
        A connection already called ``name`` is closed and replaced."""
        if token_env:
            token = token or _token_from_env(token_env)
        server = Server(url, token, **server_options)
        try:
            server.version()
            server.kernelspecs.list()  # proves the token (/api needs none); gateways forbid listing kernels
        except Exception:
            server.close()
            raise
        return self.add(Connection(name or self._free_name(server), server, kernel_name=kernel_name))

    def add(self, connection: Connection) -> Connection:
        """Register an already built connection (replacing one of the same name) and make it current."""
        old = self._connections.get(connection.name)
        if old is not None and old is not connection:
            old.close()
        self._connections[connection.name] = connection
        self._current = connection.name
        return connection

    def get(self, name: str | None = None) -> Connection:
        """The connection ``name``, or the current one."""
        if name is None:
            if self.current is None:
                raise ConnectionNotFound("No server connected; run %remote connect URL (or remote_magic.connect(url)).")
            return self.current
        try:
            return self._connections[name]
        except KeyError:
            known = ", ".join(self._connections) or "none"
            raise ConnectionNotFound(f"No connection named {name!r} (known: {known}).") from None

    def use(self, name: str) -> Connection:
        """Make ``name`` the current connection."""
        connection = self.get(name)
        self._current = name
        return connection

    def remove(self, name: str | None = None, *, stop_started: bool = True) -> list[str]:
        """Forget a connection (the current one by default); see :meth:`Connection.close`."""
        connection = self.get(name)
        del self._connections[connection.name]
        if self._current == connection.name:
            self._current = next(iter(self._connections), None)
        return connection.close(stop_started=stop_started)

    def clear(self) -> None:
        """Remove every connection."""
        for connection in list(self):
            self.remove(connection.name)

    def _free_name(self, server: Server) -> str:
        base = (server.url.netloc.split(":")[0] or "server").split(".")[0] or "server"
        base = base if not base.isdigit() else "local"
        name, n = base, 1
        while name in self._connections and str(self._connections[name].server.url) != str(server.url):
            n += 1
            name = f"{base}-{n}"
        return name


def _token_from_env(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise UsageError(f"Environment variable {variable} is not set; export it with the server's token.")
    return value
