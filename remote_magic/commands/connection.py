"""``connect`` (to a URL, or to the server running on this machine), ``connections``, ``use``, ``disconnect``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from IPython.display import display

from ..bare import KIND as BARE_KIND
from ..discovery import ServerInfo, find_running, running_servers
from ..errors import UsageError
from ..existing import connect_existing, describe_existing
from ..frontend import in_notebook
from ..hub import ProgressEvent, user_server_url
from ..launch import launched_server
from ..registry import Registry
from ..tables import Table
from ..urls import parse_server_url
from . import Context, arg, command

_CONNECT_EPILOG = """\
The token: prefer --token-env VAR or the JUPYTER_TOKEN variable, or --ask-token for a hidden prompt.
A server with a password and no token: --password-env VAR or --ask-password logs in as a browser does.
A server running on this machine needs none of these: its token is read from its runtime file
(see %remote servers) and never shown.
A URL with ?token=... is accepted; the token is stripped at once and never shown, but it stays in the
cell's source, so avoid that form in notebooks you share."""


@command(
    "connect",
    "Register a server, check it answers, and make it current.",
    arg(
        "url",
        nargs="?",
        help="server URL, e.g. http://host:8888/ (default: $JUPYTER_SERVER_URL, else the one server running here)",
    ),
    arg("--name", "-n", help="connection name (default: from the host); an existing one is replaced"),
    arg(
        "--existing",
        nargs="?",
        const="",
        metavar="FILE|ID",
        help="a kernel known only by its connection file, over ZMQ (as jupyter console --existing): "
        "the newest one in the runtime directory, or this path or kernel id",
    ),
    arg("--token-env", metavar="VAR", help="read the token from environment variable VAR"),
    arg("--ask-token", action="store_true", help="ask for the token with a hidden prompt"),
    arg("--password-env", metavar="VAR", help="log in with the password in environment variable VAR (a server without a token)"),
    arg("--ask-password", action="store_true", help="ask for the login password with a hidden prompt"),
    arg("--kernel-username", metavar="NAME", help="KERNEL_USERNAME for kernels started on a gateway (default: $KERNEL_USERNAME, else the local user)"),
    arg("--kernel", metavar="SPEC", help="kernelspec for kernels started on first use"),
    arg("--server", metavar="NAME", help="on a JupyterHub: your named server NAME (default: your default server)"),
    arg("--insecure", action="store_true", help="do not verify TLS certificates (trusted networks only)"),
    arg("--ca-bundle", metavar="PATH", help="CA bundle to verify the server's TLS certificate"),
    arg("--protocol", choices=["auto", "v1", "legacy"], help="kernel websocket protocol (default: auto)"),
    arg(
        "--safe-outputs",
        action="store_true",
        help="show only inert output of this server's kernels: no JavaScript, no scripts in HTML (see RemoteMagic.safe_outputs)",
    ),
    epilog=_CONNECT_EPILOG,
    group="connect",
)
def connect(context: Context, options: argparse.Namespace) -> None:
    if options.existing is not None:
        return _connect_existing(context, options)
    url = options.url or os.environ.get("JUPYTER_SERVER_URL") or _only_local_server(context)
    _, url_token = parse_server_url(url)  # %remote has masked it in the history already
    token = getpass.getpass("Token: ") if options.ask_token else None
    password = getpass.getpass("Password: ") if options.ask_password else None
    if not (token or url_token or options.token_env or password or options.password_env):
        local = find_running(url)
        token = local.token if local is not None and local.token else None
    hub_server = _through_hub(url, options, token or url_token)
    if hub_server:
        url, token = hub_server, token or url_token
    connection = context.registry.connect(
        url,
        name=options.name,
        token=token,
        token_env=options.token_env,
        password=password,
        password_env=options.password_env,
        kernel_username=options.kernel_username,
        kernel_name=options.kernel,
        verify=not options.insecure,
        ca_bundle=options.ca_bundle,
        protocol=options.protocol or context.magic.protocol,
        safe_outputs=options.safe_outputs,
        ping_timeout=context.magic.ping_timeout,
    )
    print(describe(connection))
    if url_token:
        print(
            "Note: the token was taken from the URL and is kept in memory only; it is still in this "
            "cell's source. Prefer --token-env VAR or JUPYTER_TOKEN.",
            file=sys.stderr,
        )


def _connect_existing(context: Context, options: argparse.Namespace) -> None:
    if options.url:
        raise UsageError("%remote connect: give a URL or --existing, not both.")
    connection = connect_existing(
        context.registry, options.existing or None, name=options.name, safe_outputs=options.safe_outputs
    )
    print(describe_existing(connection))


def _through_hub(url: str, options: argparse.Namespace, token: str | None) -> str | None:
    """The URL of the user's server when ``url`` is a JupyterHub (started if need be), else None."""
    if options.token_env and not token:
        token = os.environ.get(options.token_env)
    return user_server_url(
        url,
        token or os.environ.get("JUPYTER_TOKEN"),
        server=options.server,
        on_progress=_SpawnProgress(),
        verify=not options.insecure,
        ca_bundle=options.ca_bundle,
    )


class _SpawnProgress:
    """The hub's spawn progress as one line that updates itself: an updating display in a
    notebook (no stderr box left behind), a self-overwriting line on a terminal."""

    def __init__(self) -> None:
        self._handle: Any = None

    def __call__(self, event: ProgressEvent) -> None:
        line = f"JupyterHub: {event.get('progress', '?')}% {event.get('message') or ''}".rstrip()
        done = event.get("ready") or event.get("failed")
        if in_notebook():
            if self._handle is None:
                self._handle = display({"text/plain": line}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": line}, raw=True)
            return
        sys.stderr.write(f"\r{line:<72}" + ("\n" if done else ""))
        sys.stderr.flush()


def _only_local_server(context: Context) -> str:
    """The URL of the one Jupyter server running on this machine; otherwise show the choice and stop."""
    found = running_servers()
    if not found:
        raise UsageError(
            "%remote connect: no URL given, JUPYTER_SERVER_URL is not set and no Jupyter server runs on "
            "this machine; give a URL, or start one with %remote launch."
        )
    if len(found) > 1:
        display(server_table(context.registry, found))
        raise UsageError(
            f"%remote connect: {len(found)} Jupyter servers run on this machine (listed above); "
            "choose one with %remote connect URL."
        )
    return found[0].url


def server_table(registry: Registry, servers: list[ServerInfo]) -> Table:
    """The local servers as rows (url, root_dir, pid, version, connection); never their tokens."""
    connected = {}
    for connection in registry:
        if connection.server.capabilities.kind == BARE_KIND:
            continue  # a kernel known by its connection file: no server
        for info in servers:
            if info.matches(str(connection.server.url)):
                connected[info.pid] = connection.name
    rows = [
        {"url": info.url, "root_dir": info.root_dir, "pid": info.pid, "version": info.version, "connection": connected.get(info.pid)}
        for info in servers
    ]
    return Table(
        rows,
        ["url", "root_dir", "pid", "version", "connection"],
        title="Jupyter servers running on this machine",
        empty="(no running Jupyter server found: start one with %remote launch, or jupyter server)",
    )


def describe(connection: Any) -> str:
    """The one line ``connect`` prints: name, URL, kind and version, user, kernel count, and what
    the server does not offer."""
    server = connection.server
    caps = server.capabilities
    me = server.me() or {}
    user = (me.get("identity") or {}).get("name") or (me.get("identity") or {}).get("username") or "-"
    if caps.kernel_listing:
        kernels = len(server.kernels.list())
        running = f"{kernels} kernel{'s' if kernels != 1 else ''} running"
    else:
        running = "kernels not listed"
    reattached = f"; re-attached to kernel {connection.kernel.id}" if connection.kernel is not None else ""
    absent = [name.replace("_", " ") for name, offered in caps.offers().items() if not offered]
    lacks = f"; it offers no {', no '.join(absent)}" if absent else ""
    return (
        f"Connected {connection.name!r}: {server.url} ({caps.label} {caps.version or '?'}, user {user}, "
        f"{running}{reattached}{lacks})"
    )


@command("connections", "List the registered connections (the current one is marked).", group="connect")
def connections(context: Context, options: argparse.Namespace) -> Table:
    current = context.registry.current
    rows = [
        {
            "current": "*" if connection is current else "",
            "name": connection.name,
            "url": str(connection.server.url),
            "kernel": connection.kernel.id if connection.kernel else None,
            "started": len(connection.started),
        }
        for connection in context.registry
    ]
    return Table(rows, ["current", "name", "url", "kernel", "started"], title="Connections", empty="(no connections: %remote connect URL)")


@command("use", "Make another registered connection current.", arg("name", help="connection name"), group="connect")
def use(context: Context, options: argparse.Namespace) -> None:
    connection = context.registry.use(options.name)
    print(f"Using {connection.name!r}: {connection.server.url}")


@command(
    "disconnect",
    "Forget a connection; stop the kernels it started itself (never attached ones) and name those it leaves running.",
    arg("name", nargs="?", help="connection name (default: the current one)"),
    arg("--keep-kernels", action="store_true", help="leave the kernels this connection started running"),
    group="connect",
)
def disconnect(context: Context, options: argparse.Namespace) -> None:
    connection = context.registry.get(options.name)
    # a launched server stops with its connection, and every kernel on it
    left = {} if launched_server(connection) else connection.leaves_running(stop_started=not options.keep_kernels)
    stopped = context.registry.remove(connection.name, stop_started=not options.keep_kernels)
    print(f"Disconnected {connection.name!r}; stopped {len(stopped)} kernel{'s' if len(stopped) != 1 else ''} it had started.")
    for kernel_id, reason in left.items():
        print(f"Left running: kernel {kernel_id} ({reason}).")
