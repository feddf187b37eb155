"""File transfers of the Contents API: :meth:`Transfers.upload` and :meth:`Transfers.download`.

Uploads go as base64, in JupyterLab's 1 MiB chunks when larger than one, numbered 1, 2, … and -1
for the last (the server runs its post-save hooks on -1), to a temporary ``NAME.XXXX.part`` that
is renamed into place once complete and checked. A download is written to a hidden local ``.part``
file beside its target and renamed onto it the same way. On any failure, Ctrl-C included, the
``.part`` file is removed, on the server or locally. A Ctrl-C while a chunk is on its way waits
for that request to finish (a second Ctrl-C stops at once): a request cut half-way may still reach
the server after the clean-up and leave a ``.part`` file there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .errors import AlreadyExists, ServerError, UsageError

#: ``progress(bytes_done, bytes_total)``, called after each chunk of a transfer.
Progress = Callable[[int, int], None]

#: JupyterLab's upload chunk size; files larger than this are sent in several PUTs.
CHUNK_SIZE = 1024 * 1024


def file_body(data: bytes) -> dict[str, Any]:
    """The Contents API body of a file with these bytes."""
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode("ascii")}


def numbered_chunks(stream: BinaryIO, chunk_size: int) -> Iterator[tuple[int, bytes]]:
    """``(number, data)`` for each chunk of ``stream``: 1, 2, … and -1 for the last one. The last is
    found by reading ahead, so a size that is an exact multiple of ``chunk_size`` still ends in -1."""
    number, data = 1, stream.read(chunk_size)
    while True:
        following = stream.read(chunk_size)
        if not following:
            yield -1, data
            return
        yield number, data
        number, data = number + 1, following


def check_transfer(path: str, model: dict[str, Any], size: int, sha256: str) -> None:
    """Compare a transfer with the server's size and (when it gives one) SHA-256."""
    expected_size = model.get("size")
    remote_hash = model.get("hash") if model.get("hash_algorithm") == "sha256" else None
    if (expected_size is not None and expected_size != size) or (remote_hash and remote_hash != sha256):
        raise ServerError(
            f"The transfer of {path!r} came out different from the server's copy "
            f"({size} bytes here, {expected_size} there); run it again, or add --through-kernel if this "
            "server stores uploads wrongly (jupyverse keeps them base64-encoded)."
        )


def local_target(local: str | os.PathLike[str] | None, name: str, *, overwrite: bool) -> Path:
    """Where a download lands: ``local``, or ``name`` inside it when it is a directory (the current
    directory by default). ``name`` comes from the server, so it must be a plain file name: one that
    would climb out of the directory or is absolute is refused."""
    target = Path(local).expanduser() if local else Path(".")
    if target.is_dir():
        if name in ("", ".", "..") or Path(name).name != name:
            raise UsageError(
                f"The server names this file {name!r}, which is not a plain file name; "
                "give the local file path to save it as."
            )
        target = target / name
    if target.exists() and not overwrite:
        raise AlreadyExists(f"{str(target)!r} exists locally; pass --force (overwrite=True) to replace it.")
    if not target.parent.is_dir():
        raise UsageError(f"No local directory {str(target.parent)!r}; create it first.")
    return target


@contextmanager
def finish_before_interrupt() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) pressed during the block, saying so on stderr, and raise
    KeyboardInterrupt when it ends; a second Ctrl-C raises at once. Only where Python's own handler
    is in place, in the main thread."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    pressed: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)
        sys.stderr.write("\nFinishing the request on its way, then stopping (Ctrl-C again to stop at once).\n")

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt


@contextmanager
def replacing(target: Path, *, overwrite: bool) -> Iterator[BinaryIO]:
    """A hidden ``.part`` file beside ``target`` to write into: renamed onto ``target`` when the block
    ends without error, removed on any failure (KeyboardInterrupt included)."""
    partial = None
    try:
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        with os.fdopen(handle, "wb") as out:
            yield out
        if target.exists() and not overwrite:
            raise AlreadyExists(f"{str(target)!r} appeared locally during the download; nothing was replaced.")
        os.replace(partial, target)
    except BaseException:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
        raise


class Transfers:
    """The transfer half of :class:`~remote_magic.contents.Contents`, which it is mixed into (it
    uses the path checks and requests of that class). :class:`~remote_magic.kernelfiles.KernelFiles`
    replaces the steps (``_write_chunk``, ``_place``, ``_verify``, ``_iter_bytes``, ``_remove``)."""

    def upload(
        self,
        local: str | os.PathLike[str],
        remote: str = "",
        *,
        overwrite: bool = False,
        chunk_size: int = CHUNK_SIZE,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Upload a local file, byte for byte. ``remote`` defaults to the file's name in the root;
        a directory (or a path ending with ``/``) receives it under its own name. Returns the
        remote model (metadata)."""
        source = Path(local).expanduser()
        if not source.is_file():
            raise UsageError(f"No local file {str(source)!r}; give the path of a file to upload.")
        target = self._into_directory(remote, source.name)
        self._refuse_existing(target, overwrite)
        self._require_parent(target)
        size = source.stat().st_size
        if size <= chunk_size:
            return self._upload_one(source, target, size, chunk_size, overwrite, progress)
        return self._upload_chunks(source, target, size, chunk_size, overwrite, progress)

    def _upload_one(
        self, source: Path, target: str, size: int, chunk_size: int, overwrite: bool, progress: Progress | None
    ) -> dict[str, Any]:
        """A file of one chunk at most, in one request."""
        data = source.read_bytes()
        self._put(target, file_body(data))
        if progress:
            progress(size, size)
        return self._verify(target, len(data), hashlib.sha256(data).hexdigest())

    def _upload_chunks(
        self, source: Path, target: str, size: int, chunk_size: int, overwrite: bool, progress: Progress | None
    ) -> dict[str, Any]:
        """A chunked upload to a temporary name, checked, then renamed into place: a failed upload
        leaves neither half a file under the target name nor the temporary one."""
        partial = f"{target}.{secrets.token_hex(4)}.part"
        digest, done = hashlib.sha256(), 0
        try:
            with source.open("rb") as stream:
                for number, data in numbered_chunks(stream, chunk_size):
                    with finish_before_interrupt():
                        self._write_chunk(partial, number, done, data)
                    digest.update(data)
                    done += len(data)
                    if progress:
                        progress(done, size)
            self._verify(partial, done, digest.hexdigest())
            with finish_before_interrupt():
                return self._place(partial, target, overwrite)
        except BaseException:
            with finish_before_interrupt():
                self._discard(partial)
            raise

    def _write_chunk(self, partial: str, number: int, offset: int, data: bytes) -> None:
        """JupyterLab's chunk ``number`` (1, 2, …, -1 for the last) of a chunked upload."""
        self._put(partial, {**file_body(data), "chunk": number})

    def _place(self, partial: str, target: str, overwrite: bool) -> dict[str, Any]:
        """Rename the checked ``partial`` onto ``target``; its model."""
        if self.exists(target):
            if not overwrite:
                raise AlreadyExists(f"{target!r} appeared on the server during the upload; nothing was replaced.")
            self._remove(target)
        return _without_hash(self._rest.request("PATCH", "contents", partial, json_body={"path": target}))

    def download(
        self,
        remote: str,
        local: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> Path:
        """Download a file byte for byte; ``local`` defaults to its name in the current directory,
        and a local directory receives it under its own name. Returns the local path."""
        model = self._require(remote)
        if model["type"] == "directory":
            raise UsageError(f"{model['path']!r} is a directory; download its files one by one.")
        target = local_target(local, model["name"], overwrite=overwrite)
        digest, done = hashlib.sha256(), 0
        with replacing(target, overwrite=overwrite) as out:
            for data in self._iter_bytes(model["path"]):
                out.write(data)
                digest.update(data)
                done += len(data)
                if progress:
                    progress(done, model.get("size") or done)
            self._verify(model["path"], done, digest.hexdigest())
        return target

    def _verify(self, path: str, size: int, sha256: str) -> dict[str, Any]:
        """The model of ``path`` (without its hash), once its size and SHA-256 match the transfer."""
        model = self.get(path, content=False, hash=True)
        check_transfer(path, model, size, sha256)
        return _without_hash(model)

    def _discard(self, path: str) -> None:
        try:
            self._remove(path)
        except Exception:  # best effort: the server may be the reason the upload failed
            pass

    def _remove(self, path: str) -> None:
        self._rest.request("DELETE", "contents", path)


def _without_hash(model: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in model.items() if key not in ("hash", "hash_algorithm")}
