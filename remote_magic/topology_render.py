"""Draw a :class:`~remote_magic.topology.Topology`: a mermaid flowchart (JupyterLab 4.1+ and
Notebook 7 render it in Markdown output) or an indented text tree for terminals. Pure functions.

Mermaid edges: server ``-->|runs|`` kernel, session ``-.->|uses|`` kernel, process ``-->`` child
process, kernel ``---|process|`` its process. Labels are escaped (quotes, brackets, ``#``, ``<``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .topology import Kernel, Process, ServerNode, Topology

_ENTITY = {c: f"#{ord(c)};" for c in '"#<>[](){}|`&;'}
_MAX_COMMAND = 120


def escape_label(text: str) -> str:
    """``text`` safe inside a quoted mermaid label: specials become ``#NN;`` entity codes."""
    return "".join(_ENTITY.get(c, c) for c in text.replace("\n", " "))


def _label(*lines: str) -> str:
    return '"' + "<br/>".join(escape_label(line) for line in lines if line) + '"'


def node_id(prefix: str, key: Any) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9]+', '_', str(key))}"


def _short(command: str) -> str:
    return command if len(command) <= _MAX_COMMAND else command[: _MAX_COMMAND - 1] + "\u2026"


def _kernel_lines(kernel: Kernel) -> list[str]:
    connections = f", {kernel.connections} connection{'s' if kernel.connections != 1 else ''}" if kernel.connections is not None else ""
    lines = [f"kernel {kernel.id}", f"{kernel.name or '?'} · {kernel.state}{connections}"]
    if kernel.connection_file:
        lines.append(kernel.connection_file)
    lines += [f"★ {mark}" for mark in kernel.marks]
    return lines


def mermaid(topology: Topology) -> str:
    """The flowchart text (no Markdown fence)."""
    lines = ["flowchart LR"]
    processes: dict[int, Process] = {}
    for index, server in enumerate(topology.servers):
        lines += _server_lines(index, server, processes)
    for kernel in topology.bare_kernels:
        lines.append(f"  {node_id('k', kernel.id)}{{{{{_label(*_kernel_lines(kernel))}}}}}")
        for proc in (kernel.parent, kernel.process):
            if proc is not None:
                processes[proc.pid] = proc
    for proc in processes.values():
        lines.append(f"  {node_id('p', proc.pid)}[{_label(f'pid {proc.pid}', _short(proc.command))}]")
    for proc in processes.values():
        if proc.ppid in processes:
            lines.append(f"  {node_id('p', proc.ppid)} --> {node_id('p', proc.pid)}")
    for index, server in enumerate(topology.servers):
        if server.process is not None:
            lines.append(f"  {node_id('srv', index)} ---|process| {node_id('p', server.process.pid)}")
    for kernel in topology.all_kernels():
        if kernel.process is not None:
            lines.append(f"  {node_id('k', kernel.id)} ---|process| {node_id('p', kernel.process.pid)}")
    for kernel in topology.all_kernels():
        if kernel.marks:
            lines.append(f"  style {node_id('k', kernel.id)} stroke-width:3px")
    return "\n".join(lines)


def _server_lines(index: int, server: ServerNode, processes: dict[int, Process]) -> list[str]:
    sid = node_id("srv", index)
    title = [f"server {server.url}", server.kind]
    if server.connections:
        title.append("connection " + ", ".join(repr(name) for name in server.connections))
    if server.error:
        title.append(f"not listed: {server.error}")
    lines = [f"  subgraph {sid}[{_label(' · '.join(title))}]"]  # one line: a tall title hides the sessions
    for session in server.sessions:
        lines.append(f"    {node_id('s', session.id)}([{_label(f'session {session.path}', session.type)}])")
    lines.append("  end")
    if server.process is not None:
        processes[server.process.pid] = server.process
    for kernel in server.kernels:
        lines.append(f"  {node_id('k', kernel.id)}{{{{{_label(*_kernel_lines(kernel))}}}}}")
        lines.append(f"  {sid} -->|runs| {node_id('k', kernel.id)}")
        if kernel.process is not None:
            processes[kernel.process.pid] = kernel.process
    for session in server.sessions:
        lines.append(f"  {node_id('s', session.id)} -.->|uses| {node_id('k', session.kernel_id)}")
    return lines


def mermaid_markdown(topology: Topology) -> str:
    """The flowchart in a ```` ```mermaid ```` fence, for a Markdown output."""
    return f"```mermaid\n{mermaid(topology)}\n```\n"


def text_tree(topology: Topology) -> str:
    """An indented tree for terminals: servers, their sessions and kernels, processes and files."""
    return "\n".join(_tree(topology)) or "(nothing running)"


def _tree(topology: Topology) -> Iterator[str]:
    for server in topology.servers:
        via = f" [connection {', '.join(repr(n) for n in server.connections)}]" if server.connections else ""
        yield f"server {server.url} ({server.kind}){via}"
        if server.process is not None:
            yield f"  process {server.process.pid}: {_short(server.process.command)}"
        if server.error:
            yield f"  not listed: {server.error}"
        for session in server.sessions:
            yield f"  session {session.path} ({session.type}) -> kernel {session.kernel_id}"
        for kernel in server.kernels:
            shared = [s.path for s in server.sessions_of(kernel.id)]
            yield from _kernel_tree(kernel, "  ", shared, with_session=True)
    if topology.bare_kernels:
        yield "kernels known only by their connection file"
        for kernel in topology.bare_kernels:
            yield from _kernel_tree(kernel, "  ", [], with_session=False)


def _kernel_tree(kernel: Kernel, indent: str, sessions: list[str], *, with_session: bool) -> Iterator[str]:
    marks = f" [{'; '.join(kernel.marks)}]" if kernel.marks else ""
    connections = f", {kernel.connections} connections" if kernel.connections is not None else ""
    yield f"{indent}kernel {kernel.id} ({kernel.name or '?'}, {kernel.state}{connections}){marks}"
    inner = indent + "  "
    if with_session:
        yield f"{inner}sessions: {', '.join(sessions)}" if sessions else f"{inner}no session"
    if kernel.connection_file:
        yield f"{inner}connection file {kernel.connection_file}"
    if kernel.parent is not None:
        yield f"{inner}started by process {kernel.parent.pid}: {_short(kernel.parent.command)}"
    if kernel.process is not None:
        yield f"{inner}process {kernel.process.pid}: {_short(kernel.process.command)}"


class TopologyView:
    """Shows as a mermaid diagram where Markdown renders, as the text tree elsewhere;
    ``.topology`` is the data."""

    def __init__(self, topology: Topology):
        self.topology = topology

    def _repr_markdown_(self) -> str:
        return mermaid_markdown(self.topology)

    def __repr__(self) -> str:
        return text_tree(self.topology)
