"""Which of a connection's kernels still run, and the stop at exit of those nothing can re-attach.

At exit, each connection that started kernels stops those no later process can find (see
:meth:`remote_magic.connection.Connection.stop_unreachable`), waiting at most :data:`EXIT_TIMEOUT`
seconds for the servers: an unreachable server never holds the exit up for long.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from typing import TYPE_CHECKING

from .errors import AuthenticationError

if TYPE_CHECKING:
    from .connection import Connection
    from .server import Server

#: At exit, how long (seconds) to wait at most for the servers to stop the kernels nothing can re-attach.
EXIT_TIMEOUT = 10.0

_at_exit: weakref.WeakSet[Connection] = weakref.WeakSet()


def stop_unreachable_at_exit(connection: Connection) -> None:
    """Have ``connection``'s unreachable kernels stopped at exit. Registered again at each kernel
    start, so that it runs before the stop of a server launched earlier (atexit runs last first)."""
    _at_exit.add(connection)
    atexit.unregister(_exit_handler)
    atexit.register(_exit_handler)


def forget_at_exit(connection: Connection) -> None:
    """``connection`` is closed: nothing of it is left to stop at exit."""
    _at_exit.discard(connection)


def _exit_handler() -> None:
    def stop_all() -> None:
        for connection in list(_at_exit):
            try:
                connection.stop_unreachable()
            except Exception as error:  # the server is gone or refuses: nothing more to do at exit
                print(f"remote_magic: could not stop the kernels {connection.name!r} started: {error}", file=sys.stderr)

    worker = threading.Thread(target=stop_all, name="remote_magic-stop-at-exit", daemon=True)
    worker.start()
    worker.join(EXIT_TIMEOUT)


def still_running(server: Server, kernel_ids: set[str]) -> set[str]:
    """Which of ``kernel_ids`` the server still runs. Where listing kernels is forbidden (a Kernel
    Gateway by default) each is asked for by id; none if the server is gone."""
    try:
        return kernel_ids & {k["id"] for k in server.kernels.list()}
    except AuthenticationError:
        pass  # the token was proven at connect: listing itself is forbidden
    except Exception:  # the server is gone: nothing left to stop
        return set()
    running = set()
    for kernel_id in kernel_ids:
        try:
            server.kernels.get(kernel_id)
        except Exception:
            continue
        running.add(kernel_id)
    return running
