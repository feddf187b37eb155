"""Files and notebooks on the server (the Contents API): ``ls``."""

from __future__ import annotations

import argparse

from ..tables import Table, human_size, short_time
from . import Context, arg, command


@command(
    "ls",
    "List a remote directory: name, type, size, modified, and the kernel of open notebooks.",
    arg("path", nargs="?", default="", help="directory or file path on the server (default: its root)"),
    arg("-c", "--conn", metavar="NAME", help="connection (default: the current one)"),
)
def ls(context: Context, options: argparse.Namespace) -> Table:
    server = context.connection(options.conn).server
    entries = server.contents.list(options.path.strip("/"))
    kernels = {s.get("path"): (s.get("kernel") or {}).get("execution_state") for s in server.sessions.list()}
    rows = [
        {
            "name": entry["name"] + ("/" if entry["type"] == "directory" else ""),
            "path": entry["path"],
            "type": entry["type"],
            "size": entry.get("size"),
            "modified": entry.get("last_modified"),
            "kernel": kernels.get(entry["path"]) if entry["type"] == "notebook" else None,
        }
        for entry in sorted(entries, key=lambda e: (e["type"] != "directory", e["name"].lower()))
    ]
    title = f"{server.url}{options.path.strip('/')}"
    return Table(
        rows,
        ["name", "type", "size", "modified", "kernel"],
        title=title,
        formatters={"size": human_size, "modified": short_time},
        empty="(empty directory)",
    )
