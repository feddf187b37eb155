"""What the ``%remote panel`` shows, and what its buttons do, with no widget in sight: the
registry's connections and the current one's sessions and kernels, refreshed on demand, and each
action run to a one-line outcome (an error never escapes to the notebook)."""

from __future__ import annotations

from collections.abc import Callable, Collection

from .connection import Connection
from .errors import RemoteMagicError
from .registry import Registry
from .sessions import Row, overview

Action = Callable[[], str]


def one_line(exc: BaseException) -> str:
    """An error as one line: the message of our own errors, ``Type: message`` for others."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, RemoteMagicError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PanelModel:
    """The panel's state (``connections``, ``current``, ``kernels``, ``sessions``, ``kernelspecs``)
    and its actions. An action runs at once (call it off the notebook's thread), never raises,
    leaves a one-line ``message`` or ``error``, and refreshes the state."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.connections: list[str] = []
        self.current: str | None = None
        self.kernels: list[Row] = []
        self.sessions: list[Row] = []
        self.kernelspecs: list[str] = []
        self.default_spec: str | None = None
        self.message = ""
        self.error = ""  # of the last action
        self.refresh_error = ""  # of the last refresh
        self.where = ""  # where the current connection's cells run, as one line
        self.started_here: set[str] = set()  # kernels this panel started: new and empty
        self._specs_of: Connection | None = None

    def refresh(self) -> None:
        """Read the registry and the current server's kernels, sessions (and kernelspecs once)."""
        self.connections = [c.name for c in self.registry]
        connection = self.registry.current
        self.current = connection.name if connection else None
        self.kernels, self.sessions = [], []
        self.where = cells_run_on(connection, self.started_here)
        if connection is None:
            self.kernelspecs, self.default_spec, self._specs_of = [], None, None
            self.refresh_error = ""
            return
        try:
            if self._specs_of is not connection:
                listing = connection.server.kernelspecs.list()
                self.kernelspecs = sorted(listing.get("kernelspecs") or {})
                self.default_spec = listing.get("default")
                self._specs_of = connection
            view = overview(connection)
        except Exception as exc:  # shown in the panel, never raised into the notebook
            self.refresh_error = one_line(exc)
            return
        self.kernels, self.sessions = view.kernels, view.sessions
        self.where = cells_run_on(connection, self.started_here, {row["id"]: row.get("name") for row in self.kernels})
        self.refresh_error = ""

    def _act(self, action: Action) -> bool:
        try:
            self.message, self.error = action(), ""
        except Exception as exc:  # shown in the panel, never raised into the notebook
            self.message, self.error = "", one_line(exc)
        self.refresh()
        return not self.error

    # ------------------------------------------------------------------ connections

    def use_connection(self, name: str) -> bool:
        """Make connection ``name`` current."""
        return self._act(lambda: f"Using {self.registry.use(name).name!r}.")

    def add_connection(self, url: str, token: str | None = None) -> bool:
        """Connect to ``url`` (token from ``token``, the URL or ``JUPYTER_TOKEN``) and make it current."""

        def add() -> str:
            connection = self.registry.connect(url, token=token or None)
            return f"Connected {connection.name!r}: {connection.server.url}"

        return self._act(add)

    def remove_connection(self, name: str) -> bool:
        """Forget connection ``name``; the kernels it started are shut down (attached ones are not)."""

        def remove() -> str:
            stopped = self.registry.remove(name)
            return f"Removed {name!r}; shut down {len(stopped)} kernel{'s' if len(stopped) != 1 else ''} it had started."

        return self._act(remove)

    # ------------------------------------------------------------------ kernels of the current connection

    def _connection(self) -> Connection:
        return self.registry.get()

    def attach(self, target: str) -> bool:
        """Run the current connection's cells on kernel id / session path ``target``."""
        return self._act(lambda: f"Cells now run on kernel {self._connection().attach(target).id[:8]}.")

    def interrupt(self, kernel_id: str) -> bool:
        def interrupt() -> str:
            self._connection().find_kernel(kernel_id).interrupt()
            return f"Interrupted kernel {kernel_id[:8]}."

        return self._act(interrupt)

    def restart(self, kernel_id: str) -> bool:
        def restart() -> str:
            self._connection().find_kernel(kernel_id).restart()
            return f"Restarted kernel {kernel_id[:8]}."

        return self._act(restart)

    def shutdown(self, kernel_id: str) -> bool:
        return self._act(lambda: f"Shut down kernel {self._connection().shutdown_kernel(kernel_id)[:8]}.")

    def start(self, spec: str | None = None) -> bool:
        """Start a kernel of ``spec`` and make it the current connection's default."""

        def start() -> str:
            kernel = self._connection().start_kernel(spec or None)
            self.started_here.add(kernel.id)
            return f"Started kernel {kernel.id[:8]}; cells run there."

        return self._act(start)


def cells_run_on(
    connection: Connection | None, started_here: Collection[str] = (), specs: dict[str, str | None] | None = None
) -> str:
    """One line saying where the next ``%%remote`` cells of ``connection`` run (``specs``: the
    kernelspec of each kernel id, when known)."""
    if connection is None:
        return "No connection: %%remote cells have nowhere to run yet."
    kernel = connection.kernel
    if kernel is None:
        return f"%%remote cells of {connection.name!r} start a kernel on first use."
    spec = (specs or {}).get(kernel.id)
    spec = f" ({spec})" if spec else ""
    fresh = ": a new kernel started from this panel, without the variables of the one before" if kernel.id in started_here else ""
    return f"%%remote cells of {connection.name!r} run on kernel {kernel.id[:8]}{spec}{fresh}."

