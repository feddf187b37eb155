"""Kernels and sessions: ``kernelspecs``, ``kernels``, ``sessions``, ``start``, ``attach``,
``interrupt``, ``restart``, ``shutdown``, ``switch`` and the ``panel``."""

from __future__ import annotations

import argparse
from typing import Any

from .. import frontend
from ..connection import Connection
from ..errors import RemoteMagicError, UsageError
from ..panel_model import PanelModel, one_line
from ..prompt import confirm
from ..sessions import kernelspec_rows, overview, sessions_using
from ..tables import Table, short_time
from . import Context, arg, command
from .files import Text

CONN = arg("-c", "--conn", metavar="NAME", help="connection (default: the current one)")
TARGET = arg("kernel", nargs="?", metavar="KERNEL", help="kernel id, unique id prefix or session path (default: this connection's kernel)")


def _mark(value: Any) -> str:
    return "*" if value else ""


@command("kernelspecs", "List the server's kernelspecs (* marks the one this connection uses).", CONN, group="kernels & sessions")
def kernelspecs(context: Context, options: argparse.Namespace) -> Table:
    connection = context.connection(options.conn)
    return Table(
        kernelspec_rows(connection),
        ["current", "name", "display_name", "language", "default"],
        title=f"Kernelspecs on {connection.server.url}",
        formatters={"current": _mark, "default": _mark},
        empty="(no kernelspecs)",
    )


@command(
    "kernels",
    "List the server's kernels: state, last activity, connections, sessions (* marks this connection's).",
    CONN,
    arg("--local", action="store_true", help="instead: this machine's kernel connection files, whether each answers, pid, server"),
    group="kernels & sessions",
)
def kernels(context: Context, options: argparse.Namespace) -> Table:
    if options.local:
        from .local import local_kernel_table

        return local_kernel_table()
    connection = context.connection(options.conn)
    caps = connection.server.capabilities
    known = "" if caps.kernel_listing else f" known to this connection (a {caps.label} does not list the others)"
    return Table(
        overview(connection).kernels,
        ["current", "id", "name", "state", "last_activity", "connections", "sessions", "started"],
        title=f"Kernels on {connection.server.url}{known}",
        formatters={
            "current": _mark,
            "last_activity": short_time,
            "sessions": ", ".join,
            "started": lambda started: "here" if started else "",
        },
        empty="(no kernels: %remote start)",
    )


@command(
    "sessions",
    "List the server's sessions (notebooks bound to kernels) with their kernel's state (* marks this connection's).",
    CONN,
    group="kernels & sessions",
)
def sessions(context: Context, options: argparse.Namespace) -> Table:
    connection = context.connection(options.conn)
    connection.server.capabilities.require("GET", ("sessions",), str(connection.server.url))
    return Table(
        overview(connection).sessions,
        ["current", "path", "kernel_id", "kernel_name", "state", "last_activity", "connections"],
        title=f"Sessions on {connection.server.url}",
        formatters={"current": _mark, "last_activity": short_time},
        empty="(no sessions)",
    )


@command(
    "start",
    "Start a kernel (optionally in a session bound to a notebook path) and make it this connection's default.",
    arg("spec", nargs="?", metavar="SPEC", help="kernelspec name (default: the connection's, else the server's)"),
    arg("--session", metavar="PATH", help="bind the kernel to this notebook path on the server (POST /api/sessions)"),
    CONN,
    group="kernels & sessions",
)
def start(context: Context, options: argparse.Namespace) -> None:
    connection = context.connection(options.conn)
    if options.session:
        kernel = connection.start_session(options.session.lstrip("/"), options.spec)
    else:
        kernel = connection.start_kernel(options.spec)
    print(f"Started {_describe(connection, kernel.id)}; {connection.name!r} now runs cells there.")


@command(
    "attach",
    "Use an existing kernel or session (e.g. one JupyterLab or a colleague opened); it is never stopped unless you ask.",
    arg("target", metavar="KERNEL_ID|SESSION_PATH", help="kernel id, unique id prefix, or session path"),
    CONN,
    group="kernels & sessions",
)
def attach(context: Context, options: argparse.Namespace) -> None:
    connection = context.connection(options.conn)
    kernel = connection.attach(options.target)
    print(f"Attached {_describe(connection, kernel.id)}; {connection.name!r} now runs cells there.")


@command("interrupt", "Interrupt a kernel (like Ctrl-C): the running cell stops, the state stays.", TARGET, CONN, group="run")
def interrupt(context: Context, options: argparse.Namespace) -> None:
    kernel = context.connection(options.conn).find_kernel(options.kernel)
    kernel.interrupt()
    print(f"Interrupted kernel {kernel.id}.")


@command("restart", "Restart a kernel: its variables are lost, it stays this connection's kernel.", TARGET, CONN, group="kernels & sessions")
def restart(context: Context, options: argparse.Namespace) -> None:
    kernel = context.connection(options.conn).find_kernel(options.kernel)
    kernel.restart()
    print(f"Restarted kernel {kernel.id}.")


@command(
    "shutdown",
    "Shut a kernel down (asks first unless --yes); the next cell of a connection that used it starts a new one.",
    TARGET,
    arg("--yes", "-y", action="store_true", help="do not ask for confirmation"),
    CONN,
    group="kernels & sessions",
)
def shutdown(context: Context, options: argparse.Namespace) -> None:
    connection = context.connection(options.conn)
    kernel = connection.find_kernel(options.kernel)
    if not options.yes and not confirm(f"Shut down {_describe(connection, kernel.id)}? Its state is lost."):
        print("Not shut down.")
        return
    connection.shutdown_kernel(kernel.id)
    print(f"Shut down kernel {kernel.id}.")


@command(
    "switch",
    "Give this connection's session a new kernel of SPEC (the server stops the old kernel).",
    arg("spec", metavar="SPEC", help="kernelspec name of the new kernel"),
    arg("--session", metavar="PATH", help="the session to change (default: the one of this connection's kernel)"),
    arg("--force", action="store_true", help="switch even when another session or client still uses the old kernel"),
    CONN,
    epilog="Refused when the old kernel is shared: the server would shut it down under the other users.",
    group="kernels & sessions",
)
def switch(context: Context, options: argparse.Namespace) -> None:
    connection = context.connection(options.conn)
    kernel = connection.switch_kernel(options.spec, session=options.session, force=options.force)
    print(f"Switched to {_describe(connection, kernel.id)}.")


@command(
    "panel",
    "Show a live panel of connections, sessions and kernels, with buttons (ipywidgets; as text in a terminal).",
    arg("--interval", type=float, default=2.0, metavar="SECONDS", help="refresh every SECONDS (default: 2)"),
    group="kernels & sessions",
)
def panel(context: Context, options: argparse.Namespace) -> Any:
    if options.interval <= 0:
        raise UsageError("%remote panel: --interval must be a positive number of seconds.")
    if not frontend.in_notebook():
        return panel_text(context)
    from ..panel import show_panel

    return show_panel(context.registry, interval=options.interval)


def panel_text(context: Context) -> Text:
    """What the panel shows, as text, for a terminal (the live panel's widgets need a notebook)."""
    model = PanelModel(context.registry)
    model.refresh()
    lines = ["remote_magic panel as text: the live panel with buttons needs a notebook.", ""]
    if model.current is None:
        return Text("\n".join(lines + ["No connection yet: %remote connect URL (or %remote launch)."]))
    names = ", ".join(f"{name} (current)" if name == model.current else name for name in model.connections)
    lines += [f"Connections: {names}", model.where]
    only_current = argparse.Namespace(conn=None, local=False)
    for listing in (sessions, kernels):
        try:
            lines += ["", repr(listing(context, only_current))]
        except RemoteMagicError as exc:
            lines += ["", one_line(exc)]
    return Text("\n".join(lines))


def _describe(connection: Connection, kernel_id: str) -> str:
    """``kernel 1234… (python3, session x.ipynb)``."""
    name = next((k.get("name") for k in connection.server.kernels.list() if k["id"] == kernel_id), "?")
    paths = [s["path"] for s in sessions_using(connection.server, kernel_id)]
    where = f", session{'s' if len(paths) > 1 else ''} {', '.join(paths)}" if paths else ""
    return f"kernel {kernel_id} ({name}{where})"

