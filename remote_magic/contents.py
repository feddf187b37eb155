"""``/api/contents``: files, directories, notebooks and checkpoints on the server.

Every path is resolved first (``.`` and ``..`` taken out, see :func:`remote_path`): one that climbs
above the server's root is refused, and nothing that resolves to the root is ever deleted.

Transfers are binary-safe: chunked uploads go to a temporary ``.part`` name renamed into place at
the end; downloads stream from ``files/PATH`` into a local ``.part`` file that replaces the target
only once complete (see :mod:`remote_magic.transfer`). Both are checked against the size (and the
SHA-256 where the server reports one); a failed or interrupted transfer leaves no ``.part`` file on
either side. Nothing is overwritten, remotely or locally, unless ``overwrite=True``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from .errors import AlreadyExists, NotFound, ServerError, UsageError
from .rest import RestClient
from .transfer import CHUNK_SIZE, Transfers

Model = dict[str, Any]
Cell = dict[str, Any]

_CELL_TYPES = ("code", "markdown", "raw")


def remote_path(path: str) -> str:
    """``path`` as the server's root sees it: ``/``-separated, no leading or trailing ``/``, with
    ``.`` and ``..`` resolved (``""`` is the root). A path that climbs above the root is refused."""
    parts: list[str] = []
    for part in (path or "").strip().split("/"):
        if part == "..":
            if not parts:
                raise UsageError(
                    f"{path.strip()!r} is outside the server's root directory; paths are relative to that root."
                )
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def deletable_path(path: str) -> str:
    """:func:`remote_path`, refusing the root itself (``.``, ``/``, ``a/..`` and the like)."""
    resolved = remote_path(path)
    if not resolved:
        raise UsageError(f"{path.strip() or '/'!r} is the server's root directory; refusing to delete it.")
    return resolved


def _join(directory: str, name: str) -> str:
    return remote_path(f"{directory}/{name}")


def _is_directory_path(path: str) -> bool:
    """The root (``""``, ``.``, ``a/..``) or a path written with a trailing ``/``."""
    return not remote_path(path) or (path or "").rstrip().endswith("/")


class PathRules:
    """The checks every file store applies before a write or a read (mixed into :class:`Contents`
    and :class:`~remote_magic.kernelfiles.KernelFiles`); they only need :meth:`info`."""

    def info(self, path: str) -> Model | None:
        raise NotImplementedError

    def _require(self, path: str) -> Model:
        model = self.info(path)
        if model is None:
            raise NotFound(f"No {remote_path(path) or '/'!r} on the server; check the path with %remote ls.")
        return model

    def _require_parent(self, path: str) -> None:
        """Refuse a path whose directory is missing, rather than let the server fail on it."""
        parent = remote_path(path).rpartition("/")[0]
        if parent and (self.info(parent) or {}).get("type") != "directory":
            raise NotFound(f"No directory {parent!r} on the server; create it first (%remote mkdir -p {parent}).")

    def _into_directory(self, target: str, name: str) -> str:
        """``target``, or ``target/name`` when ``target`` is a directory."""
        if _is_directory_path(target):
            return _join(target, name)
        existing = self.info(target)
        return _join(target, name) if existing is not None and existing["type"] == "directory" else remote_path(target)

    def _refuse_existing(self, path: str, overwrite: bool) -> None:
        if overwrite:
            return
        existing = self.info(path)
        if existing is not None:
            raise AlreadyExists(
                f"{remote_path(path)!r} already exists on the server ({existing['type']}); "
                "pass --force (overwrite=True) to replace it."
            )


class Contents(PathRules, Transfers):
    """The Contents API. Paths are relative to the server's root directory, ``/``-separated."""

    def __init__(self, rest: RestClient):
        self._rest = rest

    # ------------------------------------------------------------------ reading

    def get(
        self,
        path: str = "",
        *,
        content: bool = True,
        format: str | None = None,
        type: str | None = None,
        hash: bool = False,
    ) -> Model:
        """The model at ``path``; with ``content=False`` only its metadata. ``hash=True`` asks for
        the SHA-256 of the bytes (``model["hash"]``; servers before Jupyter Server 2.11 omit it)."""
        query = {"content": "1" if content else "0"}
        if format:
            query["format"] = format
        if type:
            query["type"] = type
        if hash:
            query["hash"] = "1"
        model = self._rest.request("GET", "contents", remote_path(path), query=query)
        if model.get("type") == "file" and model.get("format") is None and isinstance(model.get("content"), str):
            model["format"] = "text"  # jupyverse leaves the format of a text file out
        return model

    def list(self, path: str = "") -> list[Model]:
        """The entries of the directory at ``path`` (metadata only)."""
        model = self.get(path)
        if model.get("type") != "directory":
            return [model]
        return list(model.get("content") or [])

    def info(self, path: str) -> Model | None:
        """The metadata of ``path``, or None if nothing is there."""
        try:
            return self.get(path, content=False)
        except NotFound:
            return None

    def exists(self, path: str) -> bool:
        return self.info(path) is not None

    def read_text(self, path: str) -> str:
        """The text of a UTF-8 file (a notebook's JSON source for ``.ipynb``)."""
        model = self.get(path, type="file", format="text")
        return model["content"]

    def read_bytes(self, path: str) -> bytes:
        """The exact bytes of a file (streamed from ``files/PATH``)."""
        return b"".join(self._iter_bytes(path))

    def notebook(self, path: str) -> Model:
        """The nbformat content of a notebook: ``{"cells": […], "metadata": …, "nbformat": 4, …}``."""
        model = self.get(path, type="notebook")
        return model["content"]

    def cells(self, path: str) -> list[Cell]:
        """A notebook's cells as nbformat dicts (every field they carry, ids included)."""
        return self.notebook(path)["cells"]

    # ------------------------------------------------------------------ writing

    def save_notebook(self, path: str, notebook: Model) -> Model:
        """Write a whole notebook (``PUT /api/contents/PATH`` with ``{"type": "notebook", "content": …}``)."""
        return self._put(path, {"type": "notebook", "format": "json", "content": notebook})

    def append_cells(self, path: str, *cells: str | Cell, cell_type: str = "code") -> list[Cell]:
        """Append cells to a notebook and save it; returns the cells as written.

        Each cell is a source string (a ``cell_type`` cell) or an nbformat cell dict, kept with every
        field it carries; missing required fields are filled in and a cell id is made when the
        notebook's format has ids (nbformat 4.5+) and the cell has none or a taken one.
        """
        notebook = self.notebook(path)
        with_ids = (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) >= (4, 5)
        taken = {cell.get("id") for cell in notebook["cells"]}
        added = []
        for given in cells:
            cell = _new_cell(given, cell_type)
            if with_ids and (not cell.get("id") or cell["id"] in taken):
                cell["id"] = uuid.uuid4().hex[:8]
            taken.add(cell.get("id"))
            added.append(cell)
        notebook["cells"].extend(added)
        self.save_notebook(path, notebook)
        return added

    def append_cell(self, path: str, cell: str | Cell, *, cell_type: str = "code") -> Cell:
        """Append one cell (see :meth:`append_cells`); returns it as written."""
        return self.append_cells(path, cell, cell_type=cell_type)[0]

    def write_text(self, path: str, text: str, *, overwrite: bool = False) -> Model:
        """Write a UTF-8 text file."""
        self._refuse_existing(path, overwrite)
        self._require_parent(path)
        return self._put(path, {"type": "file", "format": "text", "content": text})

    def new_notebook(self, path: str = "") -> Model:
        """Create an empty notebook at ``path`` (``.ipynb`` is added if missing); with a directory
        (or ``""``) the server picks an unused ``UntitledN.ipynb`` in it (``POST /api/contents/DIR``)."""
        return self._new(path, "notebook")

    def new_file(self, path: str = "") -> Model:
        """Create an empty file at ``path``; with a directory the server picks ``untitledN``."""
        return self._new(path, "file")

    def mkdir(self, path: str, *, parents: bool = False) -> Model:
        """Create a directory. ``parents=True`` creates missing parents and accepts an existing one
        (like ``mkdir -p``)."""
        parts = remote_path(path).split("/")
        if not parts[-1]:
            raise UsageError("mkdir needs a directory path, e.g. data/raw.")
        steps = ["/".join(parts[: i + 1]) for i in range(len(parts))] if parents else [remote_path(path)]
        model: Model = {}
        for step in steps:
            existing = self.info(step)
            if existing is not None:
                if not parents or existing["type"] != "directory":
                    raise AlreadyExists(f"{step!r} already exists on the server ({existing['type']}).")
                model = existing
                continue
            self._require_parent(step)
            model = self._put(step, {"type": "directory"})
        return model

    def rename(self, source: str, target: str) -> Model:
        """Rename or move (``PATCH /api/contents/SOURCE`` with ``{"path": target}``). A ``target`` that is an
        existing directory, or ends with ``/``, receives ``source`` under its own name."""
        source_model = self._require(source)
        target = self._into_directory(target, source_model["name"])
        self._refuse_existing(target, overwrite=False)
        self._require_parent(target)
        return self._rest.request("PATCH", "contents", remote_path(source), json_body={"path": target})

    def delete(self, path: str, *, recursive: bool = False) -> Model:
        """Delete a file, notebook or empty directory; a directory with content only when
        ``recursive=True``. Returns the model of what was deleted. A path that resolves to the
        server's root (``""``, ``.``, ``/``, ``a/..``) is refused before anything is deleted."""
        path = deletable_path(path)
        model = self._require(path)
        entries = self.list(path) if model["type"] == "directory" else []
        if entries and not recursive:
            count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
            raise UsageError(
                f"{path!r} is a directory with {count}; pass --recursive "
                "(recursive=True) to delete it and everything in it."
            )
        try:
            self._rest.request("DELETE", "contents", path)
        except ServerError:
            if not entries:  # not the "directory not empty" refusal: nothing else to try
                raise
            for entry in entries:  # servers that never delete a full directory: empty it first
                self.delete(entry["path"], recursive=True)
            self._rest.request("DELETE", "contents", path)
        return model

    def _iter_bytes(self, path: str) -> Iterator[bytes]:
        url = f"{self._rest.url}files/{quote(remote_path(path), safe='/')}"
        with self._rest.stream(url, f"files/{remote_path(path)}") as response:
            yield from response.iter_content(chunk_size=CHUNK_SIZE)

    # ------------------------------------------------------------------ checkpoints

    def checkpoints(self, path: str) -> list[Model]:
        """The checkpoints of a file or notebook: ``[{"id", "last_modified"}]``."""
        return self._rest.request("GET", "contents", remote_path(path), "checkpoints")

    def create_checkpoint(self, path: str) -> Model:
        """Save a checkpoint of ``path`` now (the server keeps one per file by default)."""
        return self._rest.request("POST", "contents", remote_path(path), "checkpoints")

    def restore_checkpoint(self, path: str, checkpoint_id: str) -> None:
        """Put ``path`` back to the checkpoint ``checkpoint_id``."""
        known = [c["id"] for c in self.checkpoints(path)]
        if checkpoint_id not in known:
            raise NotFound(f"{remote_path(path)!r} has no checkpoint {checkpoint_id!r} (it has: {', '.join(known) or 'none'}).")
        self._rest.request("POST", "contents", remote_path(path), "checkpoints", checkpoint_id)

    def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        self._rest.request("DELETE", "contents", remote_path(path), "checkpoints", checkpoint_id)

    # ------------------------------------------------------------------ helpers

    def _put(self, path: str, body: Model) -> Model:
        """Save ``body`` at ``path`` (also named in the body, as JupyterLab does: jupyverse needs it)."""
        body = {**body, "path": remote_path(path)}
        return self._rest.request("PUT", "contents", remote_path(path), json_body=body, timeout=120)

    def _new(self, path: str, kind: str) -> Model:
        if _is_directory_path(path) or (self.info(path) or {}).get("type") == "directory":
            self._require(path)  # a missing directory: say so rather than create it
            return self._rest.request("POST", "contents", remote_path(path), json_body={"type": kind})
        target = remote_path(path)
        if kind == "notebook" and not target.endswith(".ipynb"):
            target += ".ipynb"
        self._refuse_existing(target, overwrite=False)
        self._require_parent(target)
        return self._put(target, {"type": kind})


def _new_cell(given: str | Cell, cell_type: str) -> Cell:
    """An nbformat v4 cell from a source string or a cell dict (copied, every field kept)."""
    if isinstance(given, str):
        cell: Cell = {"cell_type": cell_type, "metadata": {}, "source": given}
    elif isinstance(given, dict):
        cell = copy.deepcopy(dict(given))
    else:
        raise UsageError(f"A cell is a source string or an nbformat cell dict, not {type(given).__name__}.")
    if cell.get("cell_type") not in _CELL_TYPES or "source" not in cell:
        raise UsageError(f"A cell needs a 'source' and a cell_type among {', '.join(_CELL_TYPES)}.")
    cell.setdefault("metadata", {})
    if cell["cell_type"] == "code":
        cell.setdefault("execution_count", None)
        cell.setdefault("outputs", [])
    return cell


def _joined(text: str | list[str]) -> str:
    """nbformat's multiline strings may be lists of lines."""
    return "".join(text) if isinstance(text, list) else str(text)


def cell_source(cell: Cell) -> str:
    """A cell's source as one string."""
    return _joined(cell.get("source", ""))


def output_text(output: dict[str, Any]) -> str:
    """An nbformat output as text: stream text, ``Name: value`` for errors, Markdown as its source,
    and for other data its ``text/plain`` led by its other MIME types
    (``[text/html] <IPython.core.display.HTML object>``)."""
    kind = output.get("output_type")
    if kind == "stream":
        return _joined(output.get("text", ""))
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    if "text/markdown" in data:  # its source is the readable text (text/plain is an object's repr)
        return _joined(data["text/markdown"])
    rich = ", ".join(mimetype for mimetype in data if mimetype != "text/plain")
    text = _joined(data.get("text/plain", ""))
    return f"[{rich}] {text}".strip() if rich else text
