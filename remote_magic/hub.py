"""JupyterHub: the user a hub API token belongs to, their server started if it is not running (its
spawn progress followed), and the URL of that server.

A hub is recognised by its URL (``…/hub/``, ``…/hub/home`` and the like) or, for a root URL such
as ``https://hub.example.org/``, by answering ``GET /hub/api/``. The token goes in the
``Authorization`` header only, to the hub and then to the user's server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlunsplit

import requests

from .errors import (
    AuthenticationError,
    ExecutionTimeout,
    NotFound,
    RemoteMagicError,
    ServerError,
    ServerUnreachable,
    UsageError,
)
from .rest import RestClient
from .urls import ServerURL, parse_server_url

#: One event of the hub's spawn progress stream: ``{"progress": 50, "message": "…", "ready": …}``.
ProgressEvent = dict[str, Any]

#: How long to wait for a server the hub is starting, by default.
SPAWN_TIMEOUT = 300.0

#: Pages of the hub itself, as a browser shows them after ``/hub/``.
_HUB_PAGES = {"", "home", "spawn", "spawn-pending", "login", "token", "admin", "api"}


def hub_prefix(url: str) -> ServerURL | None:
    """The hub's own URL (ending in ``hub/``) when ``url`` is one of its pages, else None."""
    parsed, _ = parse_server_url(url)
    segments = parsed.base_path.strip("/").split("/")
    for index, segment in enumerate(segments):
        after = segments[index + 1] if index + 1 < len(segments) else ""
        inside_user_server = index >= 2 and segments[index - 2] == "user"
        if segment == "hub" and after in _HUB_PAGES and not inside_user_server:
            return ServerURL(parsed.scheme, parsed.netloc, "/" + "/".join(segments[: index + 1]) + "/")
    return None


class Hub:
    """A JupyterHub's REST API (``hub/api/``) used with one user's API token."""

    def __init__(self, url: ServerURL, token: str | None, **options: Any):
        """``url`` ends in ``hub/``; ``options`` are the TLS and timeout options of :class:`RestClient`."""
        self.url = url
        self._rest = RestClient(url, token, **options)

    def __repr__(self) -> str:
        return f"<Hub {self.url}>"

    def is_hub(self) -> bool:
        """Whether a JupyterHub answers here (``GET hub/api/`` gives its version)."""
        try:
            body = self._rest.request("GET")
        except ServerUnreachable:
            raise
        except RemoteMagicError:  # not found, a redirect, not JSON: something else answers here
            return False
        return isinstance(body, dict) and "version" in body

    def user(self) -> dict[str, Any]:
        """``GET hub/api/user``: the token's owner, with their servers."""
        try:
            return self._rest.request("GET", "user")
        except AuthenticationError:
            raise AuthenticationError(
                f"JupyterHub at {self.url} refused the token; give one of your hub API tokens "
                f"(made at {self.url}token) with --token-env VAR."
            ) from None

    def server_url(
        self,
        server: str = "",
        *,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        timeout: float = SPAWN_TIMEOUT,
    ) -> str:
        """The URL of the token owner's server (``server`` names a named server), started first if
        it is not running; ``on_progress`` sees each event of the hub's spawn progress."""
        user = self.user()
        name = user["name"]
        model = (user.get("servers") or {}).get(server) or {}
        if not model.get("ready"):
            deadline = time.monotonic() + timeout
            if not model.get("pending"):
                self._start(name, server)
            self._follow(name, server, on_progress, deadline)
            model = self._wait_ready(name, server, deadline)
        return urlunsplit((self.url.scheme, self.url.netloc, model["url"], "", ""))

    def _wait_ready(self, name: str, server: str, deadline: float) -> dict[str, Any]:
        """The server's model once the hub calls it ready (asked each second until ``deadline``)."""
        while True:
            model = (self.user().get("servers") or {}).get(server) or {}
            if model.get("ready"):
                return model
            if not model.get("pending"):
                raise ServerError(f"JupyterHub stopped starting {_label(name, server)}; see its page {self.url}home.")
            if time.monotonic() > deadline:
                raise ExecutionTimeout(
                    f"JupyterHub did not start {_label(name, server)} in time; it may still be starting: "
                    f"connect again in a moment, or see {self.url}home."
                )
            time.sleep(1.0)

    def _server_path(self, name: str, server: str) -> tuple[str, ...]:
        return ("users", name, "servers", server) if server else ("users", name, "server")

    def _start(self, name: str, server: str) -> None:
        try:
            self._rest.request("POST", *self._server_path(name, server), expect_json=False)
        except ServerError as exc:
            if "already running" not in str(exc) and "pending" not in str(exc):
                raise ServerError(f"JupyterHub could not start {_label(name, server)}: {exc}") from None
        except NotFound:
            raise UsageError(
                f"JupyterHub at {self.url} has no server {server!r} for {name} and cannot make one "
                "(named servers may be off); check the name."
            ) from None

    def _follow(self, name: str, server: str, on_progress: Callable[[ProgressEvent], None] | None, deadline: float) -> None:
        """Show the spawn progress stream until the server is ready, failed, or ``deadline``; a
        stream that breaks or is missing (an old hub) leaves the rest to :meth:`_wait_ready`."""
        url = self._rest.url.api(*self._server_path(name, server), "progress")
        try:
            with self._rest.stream(url, "progress") as response:
                for line in response.iter_lines(decode_unicode=True):
                    if time.monotonic() > deadline:
                        break
                    event = _event(line)
                    if event is None:
                        continue
                    if on_progress is not None:
                        on_progress(event)
                    if event.get("failed"):
                        raise ServerError(f"JupyterHub could not start {_label(name, server)}: {event.get('message')}")
                    if event.get("ready"):
                        return
        except (requests.RequestException, NotFound):
            pass

    def close(self) -> None:
        self._rest.close()


def _event(line: str | None) -> ProgressEvent | None:
    """The JSON of one ``data: …`` line of an event stream (None for keep-alives and others)."""
    if not line or not line.startswith("data:"):
        return None
    try:
        event = json.loads(line[5:])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _label(name: str, server: str) -> str:
    return f"{name}'s server {server!r}" if server else f"{name}'s server"


def user_server_url(
    url: str,
    token: str | None,
    *,
    server: str | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    timeout: float = SPAWN_TIMEOUT,
    verify: bool = True,
    ca_bundle: str | None = None,
) -> str | None:
    """If ``url`` is a JupyterHub, the URL of the token owner's server there (started if need be,
    see :meth:`Hub.server_url`); else None. ``server`` names a named server (then ``url`` must be
    a hub)."""
    parsed, _ = parse_server_url(url)
    prefix = hub_prefix(url) or ServerURL(parsed.scheme, parsed.netloc, parsed.base_path + "hub/")
    hub = Hub(prefix, token, verify=verify, ca_bundle=ca_bundle)
    try:
        if hub_prefix(url) is None and (parsed.base_path != "/" or not hub.is_hub()):
            if server:
                raise UsageError(f"--server is for JupyterHub, and {parsed} is not one; give the hub's URL.")
            return None
        if not token:
            raise UsageError(f"JupyterHub at {prefix} needs an API token (made at {prefix}token); pass it with --token-env VAR.")
        return hub.server_url(server or "", on_progress=on_progress, timeout=timeout)
    finally:
        hub.close()
