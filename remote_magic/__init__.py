"""Run code on a remote Jupyter server's kernel as if it were local.

In a notebook: ``%load_ext remote_magic``, then ``%remote connect URL`` and ``%%remote`` cells.
In a script::

    import remote_magic
    conn = remote_magic.connect("http://host:8888/", token_env="JUPYTER_TOKEN")
    print(conn.run("1 + 1").result)
"""

from __future__ import annotations

from typing import Any

from .channel import KernelChannel
from .connection import Connection
from .discovery import ServerInfo, running_servers
from .errors import (
    AlreadyExists,
    AuthenticationError,
    ConnectionLost,
    ConnectionNotFound,
    ExecutionTimeout,
    KernelDied,
    KernelInUse,
    NotAJupyterServer,
    NotFound,
    NotOffered,
    NotPermitted,
    PickleRequired,
    ProtocolError,
    RemoteExecutionError,
    RemoteMagicError,
    RequestDropped,
    ServerError,
    ServerUnreachable,
    TargetsFailed,
    UsageError,
    VariableError,
)
from .jobs import Job, JobCancelled, JobTable
from .jobs import default_table as job_table
from .kernel import RemoteKernel
from .outputs import ExecutionResult, OutputList
from .registry import Registry
from .server import Server

__version__ = "0.1.0"

#: The process-wide registry the magics use.
registry = Registry()


def connect(url: str, **options: Any) -> Connection:
    """Register a server in the process-wide registry and make it current (see :meth:`Registry.connect`)."""
    return registry.connect(url, **options)


def submit(code: str, *, conn: str | None = None, kernel: str | None = None, name: str | None = None, **options: Any) -> Job:
    """Run ``code`` in the background on a connection's kernel (default: the current connection's
    default kernel); returns a :class:`Job` at once, listed in ``remote_magic.job_table``."""
    connection = registry.get(conn)
    return job_table.submit(connection.kernel_for(kernel), code, name=name, connection=connection.name, **options)


def run_on(targets: str | list[str], code: str, **options: Any) -> dict[str, ExecutionResult]:
    """Run ``code`` on several connections in parallel (``"alpha,beta"``, a list, or ``"all"``);
    one :class:`ExecutionResult` per connection name (see :func:`remote_magic.fanout.run_on`)."""
    from .fanout import run_on as fan_out

    return fan_out(registry, targets, code, **options)


def launch_local(**options: Any) -> Connection:
    """Start a private Jupyter Server on 127.0.0.1, connect to it as ``local`` and make it current;
    it stops on disconnect or when this process exits (see :func:`remote_magic.launch.launch`)."""
    from .launch import launch

    return launch(registry, **options)


def connect_existing(target: str | None = None, **options: Any) -> Any:
    """Register a kernel known only by its connection file (over ZMQ) and make it current
    (see :func:`remote_magic.existing.connect_existing`)."""
    from .existing import connect_existing as connect_file

    return connect_file(registry, target, **options)


def topology(everything: bool = False) -> Any:
    """What runs where, as data: the current connection, or everything on this machine
    (see :func:`remote_magic.topology.gather`)."""
    from .topology import gather

    return gather(registry, everything=everything)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext remote_magic``."""
    from .magics import RemoteMagic

    ipython.register_magics(RemoteMagic(ipython, registry=registry))


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext remote_magic``: close every connection (kernels started here are stopped)."""
    registry.clear()


__all__ = [
    "AlreadyExists",
    "AuthenticationError",
    "Connection",
    "ConnectionLost",
    "ConnectionNotFound",
    "ExecutionResult",
    "ExecutionTimeout",
    "Job",
    "JobCancelled",
    "JobTable",
    "KernelChannel",
    "KernelDied",
    "KernelInUse",
    "NotAJupyterServer",
    "NotFound",
    "NotOffered",
    "NotPermitted",
    "OutputList",
    "PickleRequired",
    "ProtocolError",
    "Registry",
    "RemoteExecutionError",
    "RemoteKernel",
    "RemoteMagicError",
    "RequestDropped",
    "Server",
    "ServerError",
    "ServerInfo",
    "ServerUnreachable",
    "TargetsFailed",
    "UsageError",
    "VariableError",
    "connect",
    "connect_existing",
    "job_table",
    "launch_local",
    "registry",
    "run_on",
    "running_servers",
    "submit",
    "topology",
]
