"""Files through a Python kernel, for servers without a Contents API (Kernel and Enterprise Gateway).

The same calls as :class:`~remote_magic.contents.Contents` for ``ls``, ``cat``, ``upload`` and
``download``, and the same path rules (:class:`~remote_magic.contents.PathRules`), but paths are
relative to the kernel's working directory and every step is a silent ``execute_request`` on the
kernel's shell channel: the request carries upload chunks (base64 in the code) and its
``user_expressions`` bring back the answer (download chunks too), so nothing crosses iopub and its
rate limits. Uploads go to a ``NAME.XXXX.part`` file, are checked (size and SHA-256) on the kernel
side and renamed into place; downloads use the local ``.part`` file of
:mod:`remote_magic.transfer`. A failed or interrupted transfer leaves no ``.part`` file.
"""

from __future__ import annotations

import ast
import base64
import json
import mimetypes
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .contents import PathRules, remote_path
from .errors import AlreadyExists, NotFound, ServerError, UsageError
from .transfer import CHUNK_SIZE, Transfers, check_transfer

if TYPE_CHECKING:
    from .kernel import RemoteKernel
    from .server import Server

Model = dict[str, Any]

#: The line the file commands print when they go through the kernel.
NOTE = "(through the kernel: this server has no contents API)"

#: Seconds one step (a chunk, a listing) may take on the kernel; a busy kernel answers after its cell.
STEP_TIMEOUT = 120.0

# Runs inside the kernel (stdlib only): ``call(json_text)`` returns a JSON text, never raises.
_KERNEL_SIDE = r'''
import base64, datetime, hashlib, json, os

def _model(path):
    full = os.path.join(os.getcwd(), path) if path else os.getcwd()
    if not os.path.exists(full):
        return None
    st = os.stat(full)
    kind = "directory" if os.path.isdir(full) else "notebook" if path.endswith(".ipynb") else "file"
    stamp = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat()
    return {"name": os.path.basename(path), "path": path, "type": kind,
            "size": None if kind == "directory" else st.st_size, "last_modified": stamp}

def _digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()

def _do(op, path, a):
    if op == "info":
        return {"model": _model(path), "root": os.getcwd()}
    if op == "list":
        names = sorted(n for n in os.listdir(path or ".") if not n.startswith("."))
        return {"entries": [_model(path + "/" + n if path else n) for n in names], "root": os.getcwd()}
    if op == "read":
        with open(path, "rb") as f:
            f.seek(a["offset"])
            return {"data": base64.b64encode(f.read(a["size"])).decode("ascii")}
    if op == "write":
        with open(path, "r+b" if a["offset"] else "xb") as f:
            f.seek(a["offset"])
            f.write(base64.b64decode(a["data"]))
        return {}
    if op == "hash":
        return {"size": os.path.getsize(path), "hash": _digest(path)}
    if op == "place":
        target = a["target"]
        if a["overwrite"]:
            os.replace(path, target)
        else:
            try:
                os.link(path, target)  # fails if the target exists: no overwrite, even in a race
            except FileExistsError:
                return {"exists": True}
            except OSError:  # no hard links on this file system
                if os.path.exists(target):
                    return {"exists": True}
                os.replace(path, target)
            else:
                os.unlink(path)
        return {"model": _model(target)}
    if op == "remove":
        if os.path.isfile(path):
            os.unlink(path)
        return {}
    raise ValueError(op)

def call(text):
    r = json.loads(text)
    try:
        return json.dumps(_do(r["op"], r["path"], r))
    except FileNotFoundError:
        return json.dumps({"error": "NotFound"})
    except Exception as e:
        return json.dumps({"error": type(e).__name__, "message": str(e)})
'''

class KernelFiles(PathRules, Transfers):
    """Files in the working directory of a Python kernel: ``list``, ``info``, ``get``,
    ``read_bytes``, ``upload`` and ``download``, as :class:`~remote_magic.contents.Contents` has them."""

    def __init__(self, kernel: RemoteKernel):
        self.kernel = kernel
        self.root: str | None = None  # the kernel's working directory, once asked

    def __repr__(self) -> str:
        return f"<KernelFiles of kernel {self.kernel.id}>"

    # ------------------------------------------------------------------ reading

    def info(self, path: str) -> Model | None:
        """The metadata of ``path``, or None if nothing is there."""
        answer = self._call("info", path)
        self.root = answer["root"]
        return answer["model"]

    def list(self, path: str = "") -> list[Model]:
        """The entries of the directory at ``path`` (hidden files left out, as the Contents API does)."""
        model = self._require(path)
        if model["type"] != "directory":
            return [model]
        answer = self._call("list", path)
        self.root = answer["root"]
        return [entry for entry in answer["entries"] if entry is not None]

    def get(self, path: str = "") -> Model:
        """The model at ``path`` with its content, as the Contents API gives it: a directory's
        entries, a notebook's nbformat dict, a file's text (``format`` ``text``) or, for bytes
        that are not UTF-8, no content (``format`` ``base64``)."""
        model = self._require(path)
        if model["type"] == "directory":
            return {**model, "content": self.list(path), "format": "json"}
        data = self.read_bytes(model["path"])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            mimetype = mimetypes.guess_type(model["name"])[0] or "application/octet-stream"
            return {**model, "content": None, "format": "base64", "mimetype": mimetype}
        if model["type"] == "notebook":
            return {**model, "content": json.loads(text), "format": "json"}
        return {**model, "content": text, "format": "text", "mimetype": "text/plain"}

    def read_bytes(self, path: str) -> bytes:
        """The exact bytes of a file, read in chunks."""
        return b"".join(self._iter_bytes(self._require(path)["path"]))

    # ------------------------------------------------------------------ transfer steps (see Transfers)

    # The kernel has no one-request form: every upload goes through a checked ``.part`` file.
    _upload_one = Transfers._upload_chunks

    def _write_chunk(self, partial: str, number: int, offset: int, data: bytes) -> None:
        self._call("write", partial, offset=offset, data=base64.b64encode(data).decode("ascii"))

    def _place(self, partial: str, target: str, overwrite: bool) -> Model:
        placed = self._call("place", partial, target=target, overwrite=overwrite)
        if placed.get("exists"):
            raise AlreadyExists(f"{target!r} appeared on the server during the upload; nothing was replaced.")
        return placed["model"]

    def _verify(self, path: str, size: int, sha256: str) -> Model:
        """Compare a transfer with the kernel's size and SHA-256 of ``path``."""
        check_transfer(path, {**self._call("hash", path), "hash_algorithm": "sha256"}, size, sha256)
        return {}

    def _iter_bytes(self, path: str) -> Iterator[bytes]:
        offset = 0
        while True:
            data = base64.b64decode(self._call("read", path, offset=offset, size=CHUNK_SIZE)["data"])
            yield data
            if len(data) < CHUNK_SIZE:
                return
            offset += len(data)

    def _remove(self, path: str) -> None:
        self._call("remove", path)

    # ------------------------------------------------------------------ the kernel side

    def _call(self, op: str, path: str, **arguments: Any) -> Model:
        """Run one step on the kernel and return its answer; kernel-side errors become named ones."""
        request = json.dumps({"op": op, "path": remote_path(path), **arguments})
        # Evaluated as a user expression: no IPython input transforms on a large chunk, and no
        # trace in the kernel's namespace or history.
        expression = f"(lambda ns: (exec({_KERNEL_SIDE!r}, ns), ns['call']({request!r}))[1])({{}})"
        content = {
            "code": "",
            "silent": True,
            "store_history": False,
            "user_expressions": {"r": expression},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        reply = self.kernel.channel.request("execute_request", content, timeout=STEP_TIMEOUT, wait_idle=True)["content"]
        answer = _answer(reply, self.kernel.id)
        if answer.get("error") == "NotFound":
            raise NotFound(f"No {remote_path(path) or '/'!r} in the kernel's working directory; check the path with %remote ls.")
        if "error" in answer:
            raise ServerError(f"The kernel could not {op} {remote_path(path) or '/'!r}: {answer['error']}: {answer.get('message')}")
        return answer


def _answer(reply: dict[str, Any], kernel_id: str) -> Model:
    """The JSON answer carried by an ``execute_reply``'s user expression."""
    expression = (reply.get("user_expressions") or {}).get("r") or {}
    text = (expression.get("data") or {}).get("text/plain")
    if reply.get("status") != "ok" or expression.get("status") != "ok" or not isinstance(text, str):
        reason = reply.get("evalue") or expression.get("evalue") or "no answer"
        raise UsageError(
            f"Kernel {kernel_id} could not run the file commands ({reason}); they need a Python "
            "(IPython) kernel when the server has no contents API."
        )
    return json.loads(ast.literal_eval(text))


def lacks_contents_api(server: Server) -> bool:
    """Whether ``server`` has no Contents API (a Kernel or Enterprise Gateway)."""
    return not server.capabilities.contents
