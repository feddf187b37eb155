"""Sessions and kernels on a server as one connection sees them.

A *session* binds a kernel to a path (JupyterLab's notebooks each have one); a kernel may also run
without any session, and several sessions may share one kernel. This module names the session a
connection creates for itself, resolves what a user types (kernel id, id prefix, session path)
to a kernel, lists kernels and sessions as rows, and guards against the server's
``PATCH /api/sessions/{id}`` shutting down a kernel that someone else still uses.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import AuthenticationError, KernelInUse, NotFound, UsageError

if TYPE_CHECKING:
    from .connection import Connection
    from .server import Server

Model = dict[str, Any]
Row = dict[str, Any]

#: Folder (on the server, virtual: nothing is written there) of the sessions this package creates.
SESSION_FOLDER = "remote_magic"


# ---------------------------------------------------------------------------- session paths


def local_notebook() -> str | None:
    """The path of the local notebook this process runs for, when the frontend says so.

    Jupyter Server sets ``JPY_SESSION_NAME`` for the kernels it starts (ipykernel copies it into
    ``__session__``); VS Code sets ``__vsc_ipynb_file__``. None in a terminal or a script.
    """
    path = os.environ.get("JPY_SESSION_NAME")
    if path:
        return path
    from IPython import get_ipython

    shell = get_ipython()
    namespace = getattr(shell, "user_ns", None) or {}
    return namespace.get("__session__") or namespace.get("__vsc_ipynb_file__") or None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def stable_session_path(connection_name: str, notebook: str | None = None) -> str:
    """``remote_magic/<local host>-<local notebook>-<connection>.ipynb``.

    The same local notebook gets the same path after its kernel restarts, which is what lets a
    new local process find (re-attach to) the remote kernel of the previous one. Without a known
    notebook (a terminal, a script) the process id takes its place, so nothing is re-attached.
    """
    host = socket.gethostname().split(".")[0]
    if notebook:
        label = os.path.splitext(os.path.basename(notebook.rstrip("/\\")))[0]
    else:
        label = _process_label()
    return f"{SESSION_FOLDER}/{_slug(host)}-{_slug(label)}-{_slug(connection_name)}.ipynb"


def _process_label() -> str:
    return f"ipython-{os.getpid()}"


def named_after_this_process(path: str) -> bool:
    """Whether ``path`` is a session path this process made for itself without a notebook's name
    (a terminal, a script): no later process looks for it, so nothing re-attaches its kernel."""
    folder, _, name = path.lstrip("/").rpartition("/")
    return folder == SESSION_FOLDER and f"-{_process_label()}-" in name


_claims: weakref.WeakValueDictionary[str, Connection] = weakref.WeakValueDictionary()
_claims_lock = threading.Lock()


def claim_session_path(connection: Connection) -> str:
    """The stable session path of ``connection``, reserved for it in this process.

    Two live connections of one process never share a path (the second gets ``-2`` and so on),
    so they never share a kernel by accident.
    """
    base = stable_session_path(connection.name, local_notebook())
    stem = base[: -len(".ipynb")]
    with _claims_lock:
        path, n = base, 1
        while _claims.get(path) not in (None, connection):
            n += 1
            path = f"{stem}-{n}.ipynb"
        _claims[path] = connection
    return path


def release_session_path(connection: Connection, path: str) -> None:
    """Give ``path`` back (when ``connection`` closes)."""
    with _claims_lock:
        if _claims.get(path) is connection:
            del _claims[path]


# ---------------------------------------------------------------------------- lookups


def resolve(server: Server, target: str) -> tuple[str, Model | None]:
    """The kernel id ``target`` names, and the session it was found through (if any).

    ``target`` is tried as: a kernel id; a session path; a unique kernel id prefix; a session id
    or name.
    """
    target = (target or "").strip()
    if not target:
        raise UsageError("Give a kernel id (or a unique prefix of one) or a session path.")
    kernel_ids = [k["id"] for k in server.kernels.list()]
    if target in kernel_ids:
        return target, None
    sessions = server.sessions.list()
    by_path = [s for s in sessions if s.get("path") in (target, target.lstrip("/"))]
    if len(by_path) == 1:
        return by_path[0]["kernel"]["id"], by_path[0]
    by_prefix = [k for k in kernel_ids if k.startswith(target)]
    if len(by_prefix) == 1:
        return by_prefix[0], None
    if len(by_prefix) > 1:
        raise UsageError(f"{target!r} is the start of {len(by_prefix)} kernel ids; give more of the id.")
    by_name = [s for s in sessions if target in (s.get("id"), s.get("name"))]
    if len(by_name) == 1:
        return by_name[0]["kernel"]["id"], by_name[0]
    if len(by_name) > 1:
        raise UsageError(f"{len(by_name)} sessions are called {target!r}; give the session's path instead.")
    raise NotFound(
        f"No kernel or session {target!r} on {server.url}; %remote kernels and %remote sessions list them."
    )


def findable_kernels(server: Server) -> set[str]:
    """The kernels a later process can find through a session: one named after a notebook, or at
    a path someone chose; not one :func:`named_after_this_process`. None where the server lists
    no sessions (a Kernel Gateway forbids it and has none)."""
    try:
        listing = server.sessions.list()
    except (AuthenticationError, NotFound):
        return set()
    return {s["kernel"]["id"] for s in listing if s.get("kernel") and not named_after_this_process(s.get("path") or "")}


def sessions_using(server: Server, kernel_id: str) -> list[Model]:
    """The sessions whose kernel is ``kernel_id``."""
    return [s for s in server.sessions.list() if (s.get("kernel") or {}).get("id") == kernel_id]


def check_not_shared(server: Server, session: Model, *, own_connections: int) -> None:
    """Raise :class:`KernelInUse` when the kernel of ``session`` is used by another session, or by
    more websocket clients than the ``own_connections`` of this process."""
    kernel_id = session["kernel"]["id"]
    others = [s["path"] for s in sessions_using(server, kernel_id) if s["id"] != session["id"]]
    clients = int(server.kernels.get(kernel_id).get("connections") or 0) - own_connections
    users = []
    if others:
        users.append(("session " if len(others) == 1 else "sessions ") + ", ".join(others))
    if clients > 0:
        users.append(f"{clients} other client{'s' if clients != 1 else ''}")
    if users:
        raise KernelInUse(
            f"Kernel {kernel_id[:8]} of {session['path']} is also used by {' and '.join(users)}; changing the "
            "session's kernel would shut it down under them. Start another kernel (%remote start SPEC), "
            "or pass --force (force=True) to switch anyway."
        )


# ---------------------------------------------------------------------------- listings


@dataclass
class Overview:
    """One look at a server's kernels and sessions, as rows marked for one connection.

    Kernel rows: ``current``, ``id``, ``name`` (kernelspec), ``state``, ``last_activity``,
    ``connections``, ``sessions`` (their paths) and ``started`` (by this connection).
    Session rows: ``current``, ``id``, ``path``, ``name``, ``type``, ``kernel_id``, ``kernel_name``,
    ``state``, ``last_activity``, ``connections``.
    """

    kernels: list[Row]
    sessions: list[Row]


def overview(connection: Connection) -> Overview:
    """Fetch the kernels and sessions of ``connection``'s server (two requests)."""
    server = connection.server
    kernels = server.kernels.list()
    sessions = server.sessions.list()
    current = connection.kernel.id if connection.kernel else None
    kernel_rows = [
        {
            "current": k["id"] == current,
            "id": k["id"],
            "name": k.get("name"),
            "state": server.observed_state(k["id"]) or k.get("execution_state"),
            "last_activity": k.get("last_activity"),
            "connections": k.get("connections"),
            "sessions": [s["path"] for s in sessions if s["kernel"]["id"] == k["id"]],
            "started": k["id"] in connection.started,
        }
        for k in kernels
    ]
    session_rows = [
        {
            "current": s["kernel"]["id"] == current and connection.session_id in (None, s["id"]),
            "id": s["id"],
            "path": s.get("path"),
            "name": s.get("name"),
            "type": s.get("type"),
            "kernel_id": s["kernel"]["id"],
            "kernel_name": s["kernel"].get("name"),
            "state": server.observed_state(s["kernel"]["id"]) or s["kernel"].get("execution_state"),
            "last_activity": s["kernel"].get("last_activity"),
            "connections": s["kernel"].get("connections"),
        }
        for s in sessions
    ]
    return Overview(kernel_rows, session_rows)


def kernelspec_rows(connection: Connection) -> list[Row]:
    """The server's kernelspecs: ``name``, ``display_name``, ``language``, ``default`` (the
    server's) and ``current`` (the spec of this connection's kernel, else the one it starts)."""
    listing = connection.server.kernelspecs.list()
    current = connection.kernel_name
    if connection.kernel is not None:
        running = {k["id"]: k.get("name") for k in connection.server.kernels.list()}
        current = running.get(connection.kernel.id) or current
    current = current or listing.get("default")
    rows = []
    for name, spec in sorted((listing.get("kernelspecs") or {}).items()):
        info = (spec or {}).get("spec") or {}
        rows.append(
            {
                "current": name == current,
                "name": name,
                "display_name": info.get("display_name"),
                "language": info.get("language"),
                "default": name == listing.get("default"),
            }
        )
    return rows
