"""Servers on this machine and the server as a whole: ``servers``, ``launch``, ``shutdown-server``."""

from __future__ import annotations

import argparse

from ..discovery import running_servers
from ..launch import launch as launch_server
from ..launch import launched_server
from ..prompt import confirm
from ..tables import Table
from . import Context, arg, command
from .connection import describe, server_table


@command(
    "servers",
    "List the Jupyter servers running on this machine (from the runtime directory, like jupyter server list).",
    epilog="Connect to one with %remote connect URL: its token is read from its runtime file, never shown.",
    group="servers",
)
def servers(context: Context, options: argparse.Namespace) -> Table:
    return server_table(context.registry, running_servers())


@command(
    "launch",
    "Start a private Jupyter Server on 127.0.0.1 (random port and token) and connect to it.",
    arg("--name", "-n", default="local", help="connection name (default: local); an existing one is replaced"),
    arg("--root", metavar="DIR", help="local directory to serve (default: a new temporary directory)"),
    arg("--kernel", metavar="SPEC", help="kernelspec for kernels started on first use"),
    epilog="The server stops on %remote disconnect NAME, or when this Python process exits (even if it is "
    "killed); interrupting this kernel (the Stop button, Ctrl-C) does not stop it. It needs jupyter_server "
    "and ipykernel here: pip install 'remote_magic[launch]'.",
    group="connect",
)
def launch(context: Context, options: argparse.Namespace) -> None:
    connection = launch_server(
        context.registry,
        name=options.name,
        root_dir=options.root,
        kernel_name=options.kernel,
        protocol=context.magic.protocol,
    )
    server = launched_server(connection)
    assert server is not None
    print(f"Launched a private Jupyter Server (pid {server.pid}, root {server.root_dir}); it stops on "
          f"%remote disconnect {connection.name} or when this kernel exits, not on an interrupt.")
    print(describe(connection))


@command(
    "shutdown-server",
    "Shut the whole server down, with every kernel on it (asks first unless --yes), and forget the connection.",
    arg("--yes", "-y", action="store_true", help="do not ask for confirmation"),
    arg("-c", "--conn", metavar="NAME", help="connection (default: the current one)"),
    epilog="This is POST /api/shutdown: everyone using that server loses it. To stop only your kernels, "
    "use %remote disconnect.",
    group="servers",
)
def shutdown_server(context: Context, options: argparse.Namespace) -> None:
    connection = context.connection(options.conn)
    kernels = len(connection.server.kernels.list())
    question = f"Shut down the server {connection.server.url} and its {kernels} kernel{'s' if kernels != 1 else ''}?"
    if not options.yes and not confirm(question):
        print("Not shut down.")
        return
    connection.server.shutdown()
    context.registry.remove(connection.name, stop_started=False)
    print(f"Shut down {connection.server.url}; connection {connection.name!r} removed.")
