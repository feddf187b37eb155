"""A kernel known only by its connection file (``jupyter console --existing`` style), over ZMQ,
behind the same interface as a server's kernel: :class:`BareKernel` is a
:class:`~remote_magic.kernel.RemoteKernel` whose channel speaks ZMQ instead of the websocket, so
``execute``/``stream``/``run``, Ctrl-C, timeouts, ``input()`` and the live display are the same.

What only a server can do is refused in one line (:class:`~remote_magic.errors.NotOffered`):
listing kernels and sessions, kernelspecs, starting kernels, and restarting this one (no process
manager owns it, and ipykernel exits on a restart request, leaving nobody to start it again).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, NoReturn

from .capabilities import Capabilities
from .channel import KernelChannel
from .connfiles import ConnectionFile, heartbeat_answers
from .errors import ExecutionTimeout, KernelDied, NotOffered, UsageError
from .kernel import RemoteKernel
from .processes import all_processes, pid_alive, process_using_file
from .zmqsocket import ZmqSocket

#: The kind :class:`~remote_magic.capabilities.Capabilities` reports for a bare kernel.
KIND = "kernel-file"


class ZmqChannel(KernelChannel):
    """A :class:`KernelChannel` over the kernel's ZMQ sockets; liveness is its heartbeat and process."""

    def __init__(self, file: ConnectionFile, connection_info: dict[str, Any], *, connect_timeout: float = 30.0):
        super().__init__(None, file.kernel_id, connect_timeout=connect_timeout)  # type: ignore[arg-type]
        self.file = file
        self._info = connection_info

    def __repr__(self) -> str:
        return f"<ZmqChannel {self.file.path}>"

    def _connect(self, timeout: float) -> ZmqSocket:  # type: ignore[override]
        return ZmqSocket(self._info, self.kernel_id, self.session_id)

    def open(self) -> None:
        """Connect; the first time, wait until the kernel answers on shell *and* its iopub
        reaches us (a fresh subscription misses what is published before it is joined)."""
        if not self.is_open and not self.is_closed and not heartbeat_answers(self.file):
            self._not_answering()
        if super(KernelChannel, self).open():
            try:
                self.kernel_info = self.wait_ready(timeout=self.connect_timeout)
            except ExecutionTimeout:
                raise ExecutionTimeout(
                    f"Kernel {self.kernel_id} answers its heartbeat but not its shell channel within "
                    f"{self.connect_timeout:g}s; it may be busy with a long cell: try again later."
                ) from None

    def kernel_model(self) -> dict[str, Any] | None:
        """Asked by a request while the kernel is silent: raise KernelDied when its process is
        gone or its heartbeat stopped; None otherwise (no server model here)."""
        process = process_using_file(self.file.path, all_processes())
        alive = pid_alive(process.pid) if process is not None else heartbeat_answers(self.file)
        if not alive:
            self.kernel_gone("dead")
        return None

    def kernel_gone(self, state: str) -> NoReturn:
        what = "was restarted" if state == "restarting" else "died" if state == "dead" else "was shut down"
        raise KernelDied(
            f"Kernel {self.kernel_id} ({self.file.path}) {what} during the request; outputs until then were "
            "shown. Connect to another kernel (%remote connect --existing) and re-run the cells that set up state."
        )

    def _not_answering(self) -> NoReturn:
        raise KernelDied(
            f"No kernel answers at {self.file.path} (its process is gone?); %remote kernels --local lists "
            "the live ones, %remote prune-connection-files removes stale files."
        )


class BareServer:
    """Stands where a server would: says what a bare kernel does not offer, in one line."""

    def __init__(self, file: ConnectionFile):
        self.file = file
        self.url = file.path
        self.capabilities = Capabilities(kind=KIND, version="", contents=False, sessions=False, kernel_listing=False)
        self._channel: ZmqChannel | None = None

    def __repr__(self) -> str:
        return f"<BareServer {self.file.path}>"

    def _refuse(self, what: str) -> NoReturn:
        raise NotOffered(
            f"{Path(self.file.path).name} is a kernel known only by its connection file: it has no server, "
            f"so no {what}; connect to a Jupyter server for that."
        )

    @property
    def kernels(self) -> NoReturn:
        self._refuse("list of kernels")

    @property
    def sessions(self) -> NoReturn:
        self._refuse("sessions")

    @property
    def contents(self) -> NoReturn:
        self._refuse("Contents API (file commands go through the kernel)")

    @property
    def kernelspecs(self) -> NoReturn:
        self._refuse("kernelspecs")

    def start_kernel(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse("way to start kernels")

    def shutdown(self) -> NoReturn:
        self._refuse("server to shut down")

    def me(self) -> None:
        return None

    def channel(self, kernel_id: str) -> ZmqChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = ZmqChannel(self.file, json.loads(Path(self.file.path).read_text(encoding="utf-8")))
        return self._channel

    def forget_channel(self, kernel_id: str) -> None:
        self.close()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


class BareKernel(RemoteKernel):
    """A kernel reached over ZMQ through its connection file (see the module docstring)."""

    server: BareServer

    def __init__(self, file: ConnectionFile):
        super().__init__(BareServer(file), file.kernel_id)  # type: ignore[arg-type]
        self.file = file

    def __repr__(self) -> str:
        return f"<BareKernel {self.id} ({self.file.path})>"

    def model(self) -> dict[str, Any]:
        """What is known without a server: id, kernelspec name, connection file, process id, and
        whether it answers its heartbeat."""
        process = process_using_file(self.file.path, all_processes())
        return {
            "id": self.id,
            "name": self.file.kernel_name,
            "connection_file": self.file.path,
            "pid": process.pid if process else None,
            "execution_state": "idle" if heartbeat_answers(self.file) else "dead",
        }

    def interrupt(self) -> None:
        """As the kernel asks (``interrupt_mode`` of its connection file, default ``signal``): SIGINT
        to its process on this machine; an ``interrupt_request`` on control otherwise."""
        process = process_using_file(self.file.path, all_processes())
        if self.file.interrupt_mode == "signal" and process is not None and hasattr(signal, "SIGINT"):
            try:
                os.kill(process.pid, signal.SIGINT)
                return
            except (ProcessLookupError, PermissionError):
                pass  # not ours to signal: ask the kernel itself
        self.channel.request("interrupt_request", {}, channel="control", timeout=10)

    def restart(self) -> NoReturn:
        raise NotOffered(
            f"Kernel {self.id} was started outside any server: nothing here can start it again after a restart. "
            "Shut it down (%remote shutdown) and start a new one."
        )

    def shutdown(self) -> None:
        """Ask the kernel to exit (``shutdown_request`` on control) and close the channels."""
        try:
            self.channel.request("shutdown_request", {"restart": False}, channel="control", timeout=10)
        finally:
            self.server.close()


def find_connection_file(target: str | None = None, directory: str | os.PathLike[str] | None = None) -> ConnectionFile:
    """The connection file ``target`` names, as ``jupyter console --existing`` finds it: None = the
    most recent one of the runtime directory; else a path, a file name, or a kernel id (or part)."""
    from .discovery import runtime_dir
    from .zmqsocket import jupyter_client_module

    jupyter_client = jupyter_client_module()
    folder = str(directory or runtime_dir())
    try:  # a path or file name as given, else any file whose name contains it (the newest)
        path = jupyter_client.find_connection_file(target or "kernel-*.json", path=[".", folder])
    except OSError:
        raise UsageError(
            f"No kernel connection file {'for ' + repr(target) if target else 'at all'} in {folder} "
            "(%remote kernels --local lists them)."
        ) from None
    return ConnectionFile.read(path)
