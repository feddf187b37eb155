"""Files and notebooks on the server (the Contents API, or the kernel where the server has none):
``ls``, ``cat``, ``mkdir``, ``mv``, ``rm``, ``upload``, ``download``, ``new``, ``append-cell``, ``checkpoint``, ``checkpoints``, ``restore``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..contents import Contents, cell_source, deletable_path, output_text, remote_path
from ..errors import UsageError
from ..kernelfiles import NOTE, KernelFiles, lacks_contents_api
from ..progress import showing_progress
from ..prompt import confirm
from ..tables import Table, human_size, short_time
from ..transfer import CHUNK_SIZE
from . import Context, arg, command

CONN = arg("-c", "--conn", metavar="NAME", help="connection (default: the current one)")
FORCE = arg("--force", "-f", action="store_true", help="replace the target if it exists")
THROUGH_KERNEL = arg(
    "--through-kernel",
    action="store_true",
    help="go through the connection's (Python) kernel, in its working directory, not the contents API",
)


def file_store(context: Context, options: argparse.Namespace) -> Contents | KernelFiles:
    """The server's Contents API, or the connection's kernel where the server has none (a gateway)
    or ``--through-kernel`` asks for it; the kernel path is announced in one line."""
    connection = context.connection(options.conn)
    if not options.through_kernel and not lacks_contents_api(connection.server):
        return connection.server.contents
    print(NOTE if not options.through_kernel else "(through the kernel, in its working directory)")
    return KernelFiles(connection.default_kernel())


class Text(str):
    """A string that shows as itself (no quotes) when it is a cell's result."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


@command(
    "ls",
    "List a remote directory: name, type, size, modified, and the kernel of open notebooks.",
    arg("path", nargs="?", default="", help="directory or file path on the server (default: its root)"),
    THROUGH_KERNEL,
    CONN,
    group="files",
)
def ls(context: Context, options: argparse.Namespace) -> Table:
    server = context.connection(options.conn).server
    path = remote_path(options.path)
    files = file_store(context, options)
    entries = files.list(path)
    kernels = (
        {s.get("path"): (s.get("kernel") or {}).get("execution_state") for s in server.sessions.list()}
        if isinstance(files, Contents)
        else {}
    )
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
    title = f"{server.url}{path}" if isinstance(files, Contents) else f"kernel {files.kernel.id[:8]}: {files.root}/{path}"
    return Table(
        rows,
        ["name", "type", "size", "modified", "kernel"],
        title=title,
        formatters={"size": human_size, "modified": short_time},
        empty="(empty directory)",
    )


@command(
    "cat",
    "Show a remote text file, or a notebook as its cells (source and text outputs).",
    arg("path", help="file or notebook path on the server"),
    THROUGH_KERNEL,
    CONN,
    epilog="Binary files are refused: use %remote download. The result is also a string: text = %remote cat PATH",
    group="files",
)
def cat(context: Context, options: argparse.Namespace) -> Text:
    model = file_store(context, options).get(options.path)
    if model["type"] == "directory":
        raise UsageError(f"%remote cat: {model['path'] or '/'!r} is a directory; list it with %remote ls.")
    if model["type"] == "notebook":
        return Text(render_notebook(model["path"], model["content"]))
    if model.get("format") != "text":
        raise UsageError(
            f"%remote cat: {model['path']!r} is binary ({model.get('mimetype') or 'unknown type'}); "
            "fetch it with %remote download."
        )
    return Text(model["content"])


def render_notebook(path: str, notebook: dict[str, Any]) -> str:
    """A notebook as text: a header per cell, its source, and its outputs as text (``│ `` lines)."""
    cells = notebook.get("cells", [])
    kernel = (notebook.get("metadata", {}).get("kernelspec") or {}).get("name")
    lines = [f"{path}: {len(cells)} cell{'s' if len(cells) != 1 else ''}" + (f", kernel {kernel}" if kernel else "")]
    for number, cell in enumerate(cells, start=1):
        count = cell.get("execution_count")
        label = f"cell {number} · {cell.get('cell_type')}" + (f" · [{count}]" if count is not None else "")
        lines.append(f"── {label} ──")
        lines.append(cell_source(cell).rstrip("\n"))
        lines += [f"│ {line}" for output in cell.get("outputs", []) for line in output_text(output).splitlines()]
    return "\n".join(lines)


@command(
    "mkdir",
    "Create a remote directory.",
    arg("path", help="directory path on the server"),
    arg("-p", "--parents", action="store_true", help="create missing parents; an existing directory is fine"),
    CONN,
    group="files",
)
def mkdir(context: Context, options: argparse.Namespace) -> None:
    model = context.connection(options.conn).server.contents.mkdir(options.path, parents=options.parents)
    print(f"Created directory {model['path']}/")


@command(
    "mv",
    "Rename or move a remote file, notebook or directory (never over an existing one).",
    arg("source", help="path on the server"),
    arg("target", help="new path; an existing directory (or a path ending with /) receives SOURCE under its name"),
    CONN,
    group="files",
)
def mv(context: Context, options: argparse.Namespace) -> None:
    model = context.connection(options.conn).server.contents.rename(options.source, options.target)
    print(f"Renamed {remote_path(options.source)} to {model['path']}")


@command(
    "rm",
    "Delete a remote file, notebook or directory (asks first unless --yes).",
    arg("path", help="path on the server"),
    arg("--yes", "-y", action="store_true", help="do not ask for confirmation"),
    arg("--recursive", "-r", action="store_true", help="delete a directory with everything in it"),
    CONN,
    epilog="A directory that is not empty is refused without --recursive. The server may move what it "
    "deletes to its trash (FileContentsManager.delete_to_trash).",
    group="files",
)
def rm(context: Context, options: argparse.Namespace) -> None:
    contents = context.connection(options.conn).server.contents
    path = deletable_path(options.path)  # the root is refused before anything else
    model = contents.get(path, content=False)
    what = f"{model['type']} {model['path']}"
    if not options.yes and not confirm(f"Delete {what} on the server?"):
        print("Not deleted.")
        return
    contents.delete(path, recursive=options.recursive)
    print(f"Deleted {what}")


@command(
    "upload",
    "Copy a local file to the server, byte for byte (large files in 1 MiB chunks, like JupyterLab).",
    arg("local", help="local file path"),
    arg("remote", nargs="?", default="", help="path on the server; a directory keeps the file's name (default: the root)"),
    FORCE,
    THROUGH_KERNEL,
    CONN,
    epilog="An existing remote file is never replaced without --force. A large upload goes to a "
    "temporary name and is renamed into place only once complete.",
    group="files",
)
def upload(context: Context, options: argparse.Namespace) -> None:
    contents = file_store(context, options)
    with showing_progress(f"Uploading {options.local}") as progress:
        model = contents.upload(options.local, options.remote, overwrite=options.force, progress=progress)
    chunks = max(1, math.ceil(model["size"] / CHUNK_SIZE))
    print(f"Uploaded {options.local} ({human_size(model['size'])}, {chunks} chunk{'s' if chunks > 1 else ''}) to {model['path']}")


@command(
    "download",
    "Copy a remote file here, byte for byte (streamed).",
    arg("remote", help="file path on the server"),
    arg("local", nargs="?", help="local path; a directory keeps the file's name (default: the current directory)"),
    FORCE,
    THROUGH_KERNEL,
    CONN,
    epilog="An existing local file is never replaced without --force; a failed download leaves nothing behind.",
    group="files",
)
def download(context: Context, options: argparse.Namespace) -> None:
    contents = file_store(context, options)
    with showing_progress(f"Downloading {remote_path(options.remote)}") as progress:
        target = contents.download(options.remote, options.local, overwrite=options.force, progress=progress)
    print(f"Downloaded {remote_path(options.remote)} ({human_size(target.stat().st_size)}) to {target}")


@command(
    "new",
    "Create an empty notebook or file; with a directory (or none) the server names it UntitledN.",
    arg("kind", choices=["notebook", "file"], help="what to create"),
    arg("path", nargs="?", default="", help="path on the server (.ipynb is added to a notebook's name if missing)"),
    CONN,
    group="files",
)
def new(context: Context, options: argparse.Namespace) -> None:
    contents = context.connection(options.conn).server.contents
    create = contents.new_notebook if options.kind == "notebook" else contents.new_file
    model = create(options.path)
    print(f"Created {options.kind} {model['path']}")


@command(
    "append-cell",
    "Append a cell to a remote notebook (read it, append, save it back).",
    arg("notebook", help="notebook path on the server"),
    arg("source", help="the cell's source, quoted: '1 + 1'"),
    arg("--markdown", dest="cell_type", action="store_const", const="markdown", default="code", help="a Markdown cell"),
    arg("--raw", dest="cell_type", action="store_const", const="raw", help="a raw cell"),
    CONN,
    epilog="For cells with outputs or metadata use the API: server.contents.append_cells(path, cell_dict).",
    group="files",
)
def append_cell(context: Context, options: argparse.Namespace) -> None:
    contents = context.connection(options.conn).server.contents
    cell = contents.append_cell(options.notebook, options.source, cell_type=options.cell_type)
    label = f" {cell['id']}" if cell.get("id") else ""
    print(f"Appended {options.cell_type} cell{label} to {remote_path(options.notebook)}")


@command(
    "checkpoint",
    "Save a checkpoint of a remote file or notebook (the server keeps one per file by default).",
    arg("path", help="path on the server"),
    CONN,
    group="files",
)
def checkpoint(context: Context, options: argparse.Namespace) -> None:
    saved = context.connection(options.conn).server.contents.create_checkpoint(options.path)
    print(f"Checkpoint {saved['id']!r} of {remote_path(options.path)} saved ({short_time(saved['last_modified'])})")


@command("checkpoints", "List the checkpoints of a remote file or notebook.", arg("path", help="path on the server"), CONN, group="files")
def checkpoints(context: Context, options: argparse.Namespace) -> Table:
    rows = context.connection(options.conn).server.contents.checkpoints(options.path)
    return Table(
        rows,
        ["id", "last_modified"],
        title=f"Checkpoints of {remote_path(options.path)}",
        formatters={"last_modified": short_time},
        empty="(no checkpoints: %remote checkpoint PATH)",
    )


@command(
    "restore",
    "Put a remote file or notebook back to one of its checkpoints.",
    arg("path", help="path on the server"),
    arg("checkpoint_id", metavar="ID", help="checkpoint id (see %%remote checkpoints PATH)"),
    CONN,
    group="files",
)
def restore(context: Context, options: argparse.Namespace) -> None:
    context.connection(options.conn).server.contents.restore_checkpoint(options.path, options.checkpoint_id)
    print(f"Restored {remote_path(options.path)} to checkpoint {options.checkpoint_id!r}")
