"""What runs where: servers, their sessions and kernels, and (on this machine) the processes and
connection files behind them, as plain dataclasses. :mod:`remote_magic.topology_render` draws them.

:func:`gather` looks at the current connection (or every connection, every server running on this
machine and every kernel connection file with ``everything=True``). A local server's kernels are
matched to processes by the connection file on their command line (``-f .../kernel-ID.json``).
Tokens never enter the structure: command lines are redacted by :mod:`remote_magic.processes`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .bare import KIND as BARE_KIND
from .connfiles import ConnectionFile, heartbeat_answers, local_kernels
from .discovery import ServerInfo, find_running, running_servers
from .errors import RemoteMagicError
from .processes import ProcessInfo, all_processes, descendants, process_using_file
from .registry import Registry

THIS_NOTEBOOK = "this notebook's kernel"


@dataclass
class Process:
    pid: int
    ppid: int
    command: str  # redacted

    @classmethod
    def of(cls, info: ProcessInfo | None) -> Process | None:
        return cls(info.pid, info.ppid, info.command_line) if info is not None else None


@dataclass
class Kernel:
    id: str
    name: str  # kernelspec
    state: str  # execution_state; for a bare kernel "idle"/"busy" unknown: "answers" or "silent"
    connections: int | None = None
    connection_file: str | None = None
    process: Process | None = None
    parent: Process | None = None  # who started a bare kernel
    marks: list[str] = field(default_factory=list)  # "this notebook's kernel", "default of 'name'"


@dataclass
class Session:
    id: str
    path: str
    type: str
    kernel_id: str


@dataclass
class ServerNode:
    url: str
    kind: str  # e.g. "Jupyter Server 2.15.0"
    connections: list[str] = field(default_factory=list)  # registered connections to it
    process: Process | None = None  # when it runs on this machine
    sessions: list[Session] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    error: str | None = None  # why it could not be listed

    def sessions_of(self, kernel_id: str) -> list[Session]:
        return [s for s in self.sessions if s.kernel_id == kernel_id]

    @property
    def kernels_without_session(self) -> list[Kernel]:
        return [k for k in self.kernels if not self.sessions_of(k.id)]

    @property
    def shared_kernels(self) -> list[Kernel]:
        """Kernels used by more than one session."""
        return [k for k in self.kernels if len(self.sessions_of(k.id)) > 1]


@dataclass
class Topology:
    servers: list[ServerNode] = field(default_factory=list)
    bare_kernels: list[Kernel] = field(default_factory=list)  # known only by their connection file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def all_kernels(self) -> list[Kernel]:
        return [k for s in self.servers for k in s.kernels] + list(self.bare_kernels)


def gather(registry: Registry, *, everything: bool = False) -> Topology:
    """The topology of the current connection; with ``everything``, of every connection, every
    server running on this machine and every kernel connection file of the runtime directory."""
    connections = list(registry) if everything else [registry.get()]
    processes = all_processes()
    own_file = _own_connection_file()
    topology = Topology()
    local_servers = running_servers()
    covered: set[int] = set()
    by_url: dict[str, ServerNode] = {}
    for connection in connections:
        server = connection.server
        if server.capabilities.kind == BARE_KIND:
            kernel = _bare_kernel(server.file, processes)
            kernel.marks.append(f"default of {connection.name!r}")
            topology.bare_kernels.append(kernel)
            continue
        node = by_url.get(str(server.url))
        if node is None:
            info = next((i for i in local_servers if i.matches(str(server.url))), None) or find_running(str(server.url))
            node = _server_node(server, info, processes)
            by_url[str(server.url)] = node
            topology.servers.append(node)
            if info is not None:
                covered.add(info.pid)
        node.connections.append(connection.name)
        default = connection.kernel.id if connection.kernel else None
        for kernel in node.kernels:
            if kernel.id == default:
                kernel.marks.append(f"default of {connection.name!r}")
    if everything:
        _add_local_servers(topology, local_servers, covered, processes)
        _add_bare_kernels(topology, processes, own_file)
    for kernel in topology.all_kernels():
        if own_file and kernel.connection_file and os.path.realpath(kernel.connection_file) == own_file:
            kernel.marks.insert(0, THIS_NOTEBOOK)
    return topology


def _server_node(server: Any, info: ServerInfo | None, processes: dict[int, ProcessInfo]) -> ServerNode:
    caps = server.capabilities
    node = ServerNode(url=str(server.url), kind=f"{caps.label} {caps.version}".strip())
    kernel_processes: list[ProcessInfo] = []
    if info is not None:
        node.process = Process.of(processes.get(info.pid))
        kernel_processes = descendants(info.pid, processes)
    try:
        kernels = server.kernels.list()
        sessions = server.sessions.list() if caps.sessions else []
    except RemoteMagicError as exc:
        node.error = str(exc)
        return node
    node.sessions = [
        Session(s["id"], str(s.get("path") or ""), str(s.get("type") or ""), s["kernel"]["id"]) for s in sessions if s.get("kernel")
    ]
    for model in kernels:
        process, path = _kernel_process(model["id"], kernel_processes)
        node.kernels.append(
            Kernel(
                id=model["id"],
                name=str(model.get("name") or ""),
                state=str(model.get("execution_state") or "?"),
                connections=model.get("connections"),
                connection_file=path,
                process=Process.of(process),
            )
        )
    return node


def _kernel_process(kernel_id: str, candidates: list[ProcessInfo]) -> tuple[ProcessInfo | None, str | None]:
    """The process among ``candidates`` whose command line names ``kernel-ID.json``, and that path."""
    name = f"kernel-{kernel_id}.json"
    for process in candidates:
        for word in process.command:
            path = word.split("=", 1)[-1]
            if os.path.basename(path) == name:
                return process, path
    return None, None


def _bare_kernel(file: ConnectionFile, processes: dict[int, ProcessInfo], answers: bool | None = None) -> Kernel:
    path = file.path
    process = process_using_file(path, processes)
    answers = heartbeat_answers(file) if answers is None else answers
    return Kernel(
        id=file.kernel_id,
        name=file.kernel_name,
        state="answers" if answers else "silent",
        connection_file=path,
        process=Process.of(process),
        parent=Process.of(processes.get(process.ppid)) if process is not None else None,
    )


def _add_local_servers(
    topology: Topology, servers: list[ServerInfo], covered: set[int], processes: dict[int, ProcessInfo]
) -> None:
    """The servers running on this machine that no connection uses, read with their own token."""
    from .server import Server

    for info in servers:
        if info.pid in covered:
            continue
        server = Server(info.url, info.token or None)
        try:
            topology.servers.append(_server_node(server, info, processes))
        except RemoteMagicError as exc:
            topology.servers.append(ServerNode(info.url, f"Jupyter Server {info.version}", process=Process.of(processes.get(info.pid)), error=str(exc)))
        finally:
            server.close()


def _add_bare_kernels(topology: Topology, processes: dict[int, ProcessInfo], own_file: str | None) -> None:
    """Connection files of the runtime directory whose kernel no listed server owns, and this
    notebook's own kernel (whose file may live elsewhere: nbclient's are temporary files)."""
    known = {os.path.realpath(k.connection_file) for k in topology.all_kernels() if k.connection_file}
    ids = {k.id for s in topology.servers for k in s.kernels}
    for local in local_kernels(processes=processes):
        if os.path.realpath(local.file.path) in known or local.file.kernel_id in ids:
            continue
        known.add(os.path.realpath(local.file.path))
        topology.bare_kernels.append(_bare_kernel(local.file, processes, local.answers))
    if own_file and own_file not in known:
        try:
            topology.bare_kernels.append(_bare_kernel(ConnectionFile.read(own_file), processes, answers=True))
        except RemoteMagicError:
            pass  # not readable: nothing to show


def _own_connection_file() -> str | None:
    """The connection file of the kernel this code runs in, if it runs in one."""
    try:
        from ipykernel import get_connection_file

        return os.path.realpath(get_connection_file())
    except (ImportError, RuntimeError):  # no ipykernel, or not in a kernel (a terminal, a script)
        return None
