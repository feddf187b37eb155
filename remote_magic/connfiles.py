"""Kernel connection files (``kernel-*.json`` in the Jupyter runtime directory): which kernel still
answers, its process and owning server, and removing the files of kernels that are gone.

A kernel "answers" when its heartbeat socket echoes a ping within a short bound: the heartbeat runs
in its own thread in ipykernel, so a kernel busy with a long cell still answers. A file is stale
only when its kernel does not answer *and* no process names the file on its command line; only
stale files are ever removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .discovery import ServerInfo, running_servers, runtime_dir
from .errors import UsageError
from .processes import ProcessInfo, all_processes, process_using_file

#: Seconds a heartbeat may take to come back before the kernel is taken for silent.
HEARTBEAT_TIMEOUT = 1.0


@dataclass
class ConnectionFile:
    """One connection file and what it says (never the key)."""

    path: str
    kernel_id: str  # from the file name: kernel-ID.json (a server's UUID, or a console's pid)
    kernel_name: str
    ip: str
    transport: str
    hb_port: int
    interrupt_mode: str  # "signal" unless the file says "message"

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ConnectionFile:
        """Read ``path``; UsageError when it is not a kernel connection file."""
        try:
            data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                path=str(Path(path).resolve()),
                kernel_id=Path(path).stem.removeprefix("kernel-"),
                kernel_name=str(data.get("kernel_name") or ""),
                ip=str(data.get("ip") or "127.0.0.1"),
                transport=str(data.get("transport") or "tcp"),
                hb_port=int(data["hb_port"]),
                interrupt_mode=str(data.get("interrupt_mode") or "signal"),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{path} is not a readable kernel connection file ({type(exc).__name__}).") from None


@dataclass
class LocalKernel:
    """A connection file in the runtime directory, and the kernel behind it if any."""

    file: ConnectionFile
    answers: bool  # its heartbeat echoed
    process: ProcessInfo | None  # the process naming the file on its command line
    server: ServerInfo | None  # the local server that started it, if any

    @property
    def stale(self) -> bool:
        """Nothing answers and no process uses the file: safe to remove."""
        return not self.answers and self.process is None


def heartbeat_answers(file: ConnectionFile, timeout: float = HEARTBEAT_TIMEOUT) -> bool:
    """Whether the kernel of ``file`` echoes a heartbeat ping within ``timeout`` seconds."""
    import zmq

    context = zmq.Context.instance()
    socket = context.socket(zmq.REQ)
    socket.linger = 0
    try:
        address = f"{file.transport}://{file.ip}:{file.hb_port}" if file.transport == "tcp" else f"ipc://{file.ip}-{file.hb_port}"
        socket.connect(address)
        socket.send(b"ping")
        return bool(socket.poll(int(timeout * 1000))) and socket.recv() == b"ping"
    except zmq.ZMQError:
        return False
    finally:
        socket.close(linger=0)


def connection_files(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """The ``kernel-*.json`` files of ``directory`` (default: the runtime directory), newest first."""
    folder = Path(directory) if directory else runtime_dir()
    return sorted(folder.glob("kernel-*.json"), key=_mtime, reverse=True)


def local_kernels(
    directory: str | os.PathLike[str] | None = None,
    *,
    timeout: float = HEARTBEAT_TIMEOUT,
    processes: dict[int, ProcessInfo] | None = None,
) -> list[LocalKernel]:
    """Each readable connection file of ``directory`` with whether its kernel answers, its process
    and the local server that owns it (the server is the kernel process's parent)."""
    processes = all_processes() if processes is None else processes
    servers = {info.pid: info for info in running_servers(directory)}
    found = []
    for path in connection_files(directory):
        try:
            file = ConnectionFile.read(path)
        except UsageError:
            continue  # being written, or not a kernel's
        process = process_using_file(path, processes)
        owner = _owning_server(process, processes, servers)
        found.append(LocalKernel(file, heartbeat_answers(file, timeout), process, owner))
    return found


def _owning_server(
    process: ProcessInfo | None, processes: dict[int, ProcessInfo], servers: dict[int, ServerInfo]
) -> ServerInfo | None:
    seen = set()
    while process is not None and process.pid not in seen:
        seen.add(process.pid)
        if process.ppid in servers:
            return servers[process.ppid]
        process = processes.get(process.ppid)
    return None


def prune_connection_files(
    directory: str | os.PathLike[str] | None = None,
    *,
    confirm: Callable[[list[LocalKernel]], bool] = lambda stale: True,
    timeout: float = HEARTBEAT_TIMEOUT,
) -> list[str]:
    """Remove the connection files of kernels that are gone (see :attr:`LocalKernel.stale`) once
    ``confirm`` (shown the stale ones) agrees; return the paths removed. A live kernel's file
    is never touched: each file is checked again just before it goes."""
    stale = [kernel for kernel in local_kernels(directory, timeout=timeout) if kernel.stale]
    if not stale or not confirm(stale):
        return []
    removed = []
    processes = all_processes()
    for kernel in stale:
        if heartbeat_answers(kernel.file, timeout) or process_using_file(kernel.file.path, processes):
            continue  # it came back meanwhile
        try:
            os.remove(kernel.file.path)
        except FileNotFoundError:
            continue
        removed.append(kernel.file.path)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
