"""Variables between this process and a remote kernel: :func:`push` and :func:`pull`.

Values travel in a comm of their own (see ``remote_magic.varhelper``), as websocket buffers in pieces of
``varcodec.CHUNK_BYTES``, in the safe formats of ``remote_magic.varcodec``; pickle only when asked
for, and never decoded on the receiving side otherwise. The kernel side is installed on first use
by a silent execute, in a private module (nothing is added to the user's namespace).
"""

from __future__ import annotations

import hashlib
import keyword
import queue
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import varcodec
from .errors import (
    ExecutionTimeout,
    PickleRequired,
    RemoteMagicError,
    UsageError,
    VariableError,
)
from .protocol import Message
from .varhelper import LIMIT_ADVICE, TARGET

if TYPE_CHECKING:
    from .kernel import RemoteKernel

#: ``progress(bytes_done, bytes_total)``, called as a transfer goes.
Progress = Callable[[int, int], None]

PUSH_ADVICE = "push it with --pickle (pickle=True): the remote kernel then unpickles it, which runs code there"

#: Default limit of one push or pull (all its values together), in bytes.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Seconds a transfer may wait without a word from the kernel (it answers between cells only).
DEFAULT_TIMEOUT = 60.0

_HERE = Path(__file__).parent
_SOURCE = "\n".join((_HERE / name).read_text("utf-8") for name in ("varcodec.py", "varhelper.py"))
_MODULE = "_remote_magic_variables_" + hashlib.sha256(_SOURCE.encode()).hexdigest()[:12]
_INSTALLER = f"""
import sys, types
module = sys.modules.get({_MODULE!r})
if module is None:
    module = types.ModuleType({_MODULE!r})
    exec(compile({_SOURCE!r}, "<remote_magic variables>", "exec"), module.__dict__)
    sys.modules[{_MODULE!r}] = module
module.install()
"""
#: Runs the installer with globals of its own: the user's namespace gains nothing.
_INSTALL = f"exec({_INSTALLER!r}, {{}})"


def push(
    kernel: RemoteKernel,
    values: Mapping[str, Any],
    *,
    pickle: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Assign ``values`` (name -> value) in the remote kernel's namespace, all or none.
    Raises :class:`PickleRequired` for a value without a safe format unless ``pickle``."""
    check_names(values)
    manifest, buffers = [], []
    for name, value in values.items():
        try:
            spec, own = varcodec.encode(value, repr(name), pickle, PUSH_ADVICE)
        except varcodec.Refused as refused:
            raise _error(refused) from None
        manifest.append({"name": name, "spec": spec, "sizes": [memoryview(b).nbytes for b in own]})
        buffers += own
    total = sum(sum(entry["sizes"]) for entry in manifest)
    _check_size(", ".join(map(repr, values)), total, max_bytes)
    with _Transfer(kernel, {"op": "push", "manifest": manifest, "pickle": pickle}, timeout) as transfer:
        transfer.expect("ready")
        done = 0
        if progress is not None:
            progress(0, total)
        for chunk in varcodec.pieces(buffers):
            kernel.channel.send_comm(transfer.comm_id, {"chunk": True}, buffers=chunk)
            done += sum(len(piece) for piece in chunk)
            if progress is not None:
                progress(done, total)
        kernel.channel.send_comm(transfer.comm_id, {"done": True})
        transfer.expect("ok")


def pull(
    kernel: RemoteKernel,
    names: Iterable[str],
    *,
    pickle: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """The values of the remote variables ``names``, by name. A value that only pickle can carry is
    refused (:class:`PickleRequired`) unless ``pickle``: unpickling would run the remote's code here."""
    names = list(names)
    check_names(names)
    request = {"op": "pull", "names": names, "pickle": pickle, "max_bytes": max_bytes, "chunk_bytes": varcodec.CHUNK_BYTES}
    with _Transfer(kernel, request, timeout) as transfer:
        answer = transfer.expect("manifest")
        manifest, total = answer["manifest"], int(answer["total"])
        _check_size("Pulling " + ", ".join(map(repr, names)), total, max_bytes)  # the remote said it checked; check anyway
        for entry in manifest:
            missing = varcodec.missing_libraries(entry["spec"])
            if missing:
                raise VariableError(
                    f"Remote {entry['name']!r} needs {', '.join(missing)} here to be received; install it locally."
                )
        assembler = varcodec.Assembler([size for entry in manifest for size in entry["sizes"]])
        if progress is not None:
            progress(0, total)
        while not assembler.complete:
            msg = transfer.next_message()
            if msg["msg_type"] == "comm_close":
                raise VariableError(f"The remote kernel sent {assembler.done} of {total} bytes, then stopped.")
            assembler.feed(msg["buffers"])
            if progress is not None:
                progress(assembler.done, total)
        transfer.wait_closed()
    values, buffers = {}, list(assembler.buffers)
    for entry in manifest:
        own, buffers = buffers[: len(entry["sizes"])], buffers[len(entry["sizes"]) :]
        try:
            values[entry["name"]] = varcodec.decode(entry["spec"], own, pickle)
        except varcodec.Refused as refused:
            raise _error(refused, f"Remote {entry['name']!r}: ") from None
    return values


def push_names(kernel: RemoteKernel, namespace: Mapping[str, Any], names: list[str], *, rename: str | None = None, **options: Any) -> None:
    """Push the variables ``names`` of a local ``namespace``; with ``rename``, the one name under that remote name."""
    missing = [name for name in names if name not in namespace]
    if missing:
        raise UsageError(f"No local variable {missing[0]!r} to push.")
    push(kernel, {target: namespace[name] for name, target in _renamed(names, rename)}, **options)


def pull_names(kernel: RemoteKernel, namespace: MutableMapping[str, Any], names: list[str], *, rename: str | None = None, **options: Any) -> None:
    """Pull the remote variables ``names`` into a local ``namespace``; with ``rename``, the one name under that local name."""
    values = pull(kernel, names, **options)
    namespace.update({target: values[name] for name, target in _renamed(names, rename)})


def _renamed(names: list[str], rename: str | None) -> list[tuple[str, str]]:
    if rename is None:
        return [(name, name) for name in names]
    if len(names) != 1:
        raise UsageError("--as renames one variable; give a single NAME with it.")
    check_names([rename])
    return [(names[0], rename)]


def check_names(names: Iterable[str]) -> None:
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"{name!r} is not a variable name (a Python identifier).")


def _check_size(what: str, total: int, max_bytes: int) -> None:
    if total > max_bytes:
        raise VariableError(f"{what}: {total:,} bytes, over the limit of {max_bytes:,} ({LIMIT_ADVICE}).")


def _error(refused: varcodec.Refused, prefix: str = "") -> RemoteMagicError:
    """The named error of a refusal, here or in the kernel."""
    kind = PickleRequired if refused.reason == "pickle" else VariableError
    return kind(prefix + str(refused))


class _Transfer:
    """One comm to the kernel-side helper: installed, opened, answers queued, closed on the way out."""

    def __init__(self, kernel: RemoteKernel, request: dict[str, Any], timeout: float):
        self.kernel, self.request, self.timeout = kernel, request, timeout
        self.inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.closed = False
        self.comm_id = ""

    def __enter__(self) -> _Transfer:
        install(self.kernel, self.timeout)
        self.comm_id = self.kernel.channel.open_comm(TARGET, self.request, on_msg=self.inbox.put)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.closed:
            self.kernel.channel.close_comm(self.comm_id)  # an unfinished push is dropped remotely

    def next_message(self) -> Message:
        channel = self.kernel.channel
        try:
            msg = self.inbox.get(timeout=self.timeout)
        except queue.Empty:
            if channel.is_closed:
                raise channel.link_error() from None
            raise ExecutionTimeout(
                f"Kernel {self.kernel.id} did not answer the variable transfer within {self.timeout:g}s (it answers "
                "between cells: is one still running?)."
            ) from None
        if msg["msg_type"] == "comm_close":
            self.closed = True
        return msg

    def expect(self, key: str) -> dict[str, Any]:
        """The next answer, which must carry ``key``; the kernel's refusal is raised as its error."""
        msg = self.next_message()
        data = msg["content"].get("data") or {}
        if "error" in data:
            self.wait_closed()
            raise _error(varcodec.Refused(str(data["error"]), str(data.get("reason"))))
        if key not in data:
            raise VariableError(f"The remote kernel answered the variable transfer unexpectedly ({msg['msg_type']}).")
        return data

    def wait_closed(self) -> None:
        while not self.closed:
            self.next_message()


def install(kernel: RemoteKernel, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Install the kernel side (idempotent: once per kernel process, in a private module)."""
    result = kernel.run(_INSTALL, silent=True, store_history=False, input=None, timeout=timeout)
    if not result.ok:
        language = ((kernel.channel.kernel_info or {}).get("content", {}).get("language_info") or {}).get("name")
        if language not in (None, "python"):
            raise VariableError(f"Variables need a Python kernel; kernel {kernel.id} runs {language}.")
        raise VariableError(f"Could not set up variable transfers in kernel {kernel.id}: {result.error()}")
