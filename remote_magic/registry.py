"""Named connections to servers, one of them current. Nothing here is ever written to disk.

Each is a :class:`~remote_magic.connection.Connection`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from .connection import Connection
from .errors import ConnectionNotFound, UsageError
from .server import Server


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
        password_env: str | None = None,
        kernel_name: str | None = None,
        safe_outputs: bool = False,
        **server_options: Any,
    ) -> Connection:
        """Check the server answers with these credentials and find out what it offers (see
        :mod:`remote_magic.capabilities`), register it as ``name`` and make it current; nothing is
        registered if the check fails. A connection already called ``name`` is closed and replaced.
        If the server still runs this connection's own session, its kernel becomes the default
        (see :meth:`Connection.reattach`). ``password`` (or ``password_env``, a variable's name)
        logs in to a password-protected server."""
        if token_env:
            token = token or _secret_from_env(token_env, "token")
        if password_env and not server_options.get("password"):
            server_options["password"] = _secret_from_env(password_env, "password")
        server = Server(url, token, **server_options)
        try:
            _ = server.capabilities  # proves the credentials; a gateway's forbidden listings are no error
        except Exception:
            server.close()
            raise
        connection = self.add(
            Connection(
                name or self._free_name(server),
                server,
                kernel_name=kernel_name,
                token_env=token_env,
                password_env=password_env,
                safe_outputs=safe_outputs,
            )
        )
        connection.reattach()  # after add(): a replaced connection has released its session path
        return connection

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

    def token_variables(self) -> set[str]:
        """The environment variables the connections' tokens and passwords were read from
        (``--token-env``, ``--password-env``)."""
        return {name for connection in self for name in (connection.token_env, connection.password_env) if name}

    def _free_name(self, server: Server) -> str:
        base = (server.url.netloc.split(":")[0] or "server").split(".")[0] or "server"
        base = base if not base.isdigit() else "local"
        name, n = base, 1
        while name in self._connections and str(self._connections[name].server.url) != str(server.url):
            n += 1
            name = f"{base}-{n}"
        return name


def _secret_from_env(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise UsageError(f"Environment variable {variable} is not set; export it with the server's {what}.")
    return value
