"""A connection: one registered server, its default kernel in a session of its own, and the
kernels it started. At exit, the kernels it started that no later process can find are stopped (see
:meth:`Connection.stop_unreachable`); the others stay, to be re-attached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import sessions
from .errors import NotFound, UsageError
from .kernel import RemoteKernel
from .lifetimes import forget_at_exit, still_running, stop_unreachable_at_exit
from .outputs import ExecutionResult
from .server import Server


class Connection:
    """A registered server with its default kernel and the kernels this connection started.

    The default kernel lives in this connection's own session, whose path
    (:attr:`session_path`) stays the same for the same local notebook: a new local process
    re-attaches to that session's kernel instead of starting another one.
    """

    def __init__(
        self,
        name: str,
        server: Server,
        *,
        kernel_name: str | None = None,
        token_env: str | None = None,
        password_env: str | None = None,
        safe_outputs: bool = False,
    ):
        self.name = name
        self.server = server
        self.kernel_name = kernel_name
        self.token_env = token_env  # the name of the variable the token came from (never the token)
        self.password_env = password_env  # likewise for a password
        self.safe_outputs = safe_outputs  # show only inert output of its kernels (see remote_magic.sanitize)
        self.kernel: RemoteKernel | None = None
        self.session_id: str | None = None  # the session the default kernel was taken from
        self.started: set[str] = set()  # ids of kernels this connection started itself
        self.attached: set[str] = set()  # ids of kernels it used without starting them
        self.on_close: list[Callable[[], None]] = []  # called once the connection is closed
        self._session_path: str | None = None

    def __repr__(self) -> str:
        kernel = self.kernel.id if self.kernel else None
        return f"<Connection {self.name!r} {self.server.url} kernel={kernel}>"

    @property
    def session_path(self) -> str:
        """Path of this connection's own session, e.g. ``remote_magic/laptop-analysis-local.ipynb``
        (see :func:`remote_magic.sessions.stable_session_path`). Assign to choose another."""
        if self._session_path is None:
            self._session_path = sessions.claim_session_path(self)
        return self._session_path

    @session_path.setter
    def session_path(self, path: str) -> None:
        self._session_path = path

    def default_kernel(self) -> RemoteKernel:
        """The kernel cells run on: the one chosen before, else that of this connection's own
        session (re-attached, or created with a new kernel of ``kernel_name``)."""
        if self.kernel is None and self.reattach() is None:
            if self.server.capabilities.sessions:
                self.start_session(self.session_path)
            else:  # a gateway: no session to find the kernel by later
                self.start_kernel()
        assert self.kernel is not None
        return self.kernel

    def reattach(self) -> RemoteKernel | None:
        """If the server still runs this connection's own session (say the local kernel restarted
        since it was created) with a kernel of ``kernel_name``, make that kernel the default and
        return it; else None.

        A re-attached kernel counts as attached, not started: closing this connection leaves it
        running (stop it with :meth:`shutdown_kernel`).
        """
        existing = self.server.sessions.find(self.session_path)
        if existing is None or (self.kernel_name and existing["kernel"].get("name") != self.kernel_name):
            return None
        return self._use_session(existing)

    def start_session(
        self, path: str, kernel_name: str | None = None, *, make_default: bool = True
    ) -> RemoteKernel:
        """Start a kernel in a new session bound to ``path`` (``POST /api/sessions``); remember it
        as started here and (by default) make it the default."""
        found = self.server.sessions.find(path)
        if found is not None:
            kernel = found["kernel"]
            raise UsageError(
                f"A session already exists at {path} (a {kernel.get('name')} kernel, {kernel['id'][:8]}): "
                f"%remote attach {path} uses it, %remote switch SPEC changes its kernel."
            )
        model = self.server.sessions.create(path, kernel_name=kernel_name or self.kernel_name)
        self._started(model["kernel"]["id"])
        if make_default:
            return self._use_session(model)
        return RemoteKernel(self.server, model["kernel"]["id"])

    def _use_session(self, model: dict[str, Any]) -> RemoteKernel:
        self.kernel = self._use(model["kernel"]["id"])
        self.session_id = model["id"]
        return self.kernel

    def _use(self, kernel_id: str) -> RemoteKernel:
        """A handle on ``kernel_id``, remembered as attached unless this connection started it."""
        if kernel_id not in self.started:
            self.attached.add(kernel_id)
        return RemoteKernel(self.server, kernel_id)

    def _started(self, kernel_id: str) -> None:
        self.started.add(kernel_id)
        stop_unreachable_at_exit(self)

    def start_kernel(
        self, name: str | None = None, path: str | None = None, *, make_default: bool = True
    ) -> RemoteKernel:
        """Start a kernel, remember it as started here, and (by default) make it the default."""
        kernel = self.server.start_kernel(name or self.kernel_name, path)
        self._started(kernel.id)
        if make_default:
            self.kernel, self.session_id = kernel, None
        return kernel

    def kernel_for(self, choice: str | None = None) -> RemoteKernel:
        """The kernel a cell asks for: the default one; or a running kernel whose id starts with
        ``choice``; or this connection's kernel of kernelspec ``choice`` (started on first use)."""
        if not choice:
            return self.default_kernel()
        running = self.server.kernels.list()
        by_id = [k["id"] for k in running if k["id"].startswith(choice)]
        if len(by_id) == 1:
            return self._use(by_id[0])
        default_id = self.kernel.id if self.kernel else None
        mine = [k["id"] for k in running if k.get("name") == choice and (k["id"] == default_id or k["id"] in self.started)]
        if mine:
            return RemoteKernel(self.server, default_id if default_id in mine else mine[0])
        return self.start_kernel(choice, make_default=False)

    def attach(self, target: str) -> RemoteKernel:
        """Make an existing kernel the default: ``target`` is a kernel id (or a unique prefix) or a
        session's path (a colleague's notebook, say). It is never stopped unless asked explicitly.
        Where the server does not list its kernels, a full kernel id is asked for by id."""
        caps = self.server.capabilities
        if not caps.kernel_listing and target not in self.server.kernels.known:
            try:
                self.server.kernels.get(target.strip())  # known from now on
            except NotFound:
                raise NotFound(
                    f"No kernel {target!r} on {self.server.url}; a {caps.label} does not list its kernels: give a full kernel id."
                ) from None
        kernel_id, session = sessions.resolve(self.server, target)
        self.kernel = self._use(kernel_id)
        self.session_id = session["id"] if session else None
        return self.kernel

    def find_kernel(self, target: str | None = None) -> RemoteKernel:
        """The kernel ``target`` names (see :meth:`attach`), or the default one; starts nothing."""
        if target:
            return RemoteKernel(self.server, sessions.resolve(self.server, target)[0])
        if self.kernel is None and self.reattach() is None:
            raise UsageError(
                f"Connection {self.name!r} has no kernel yet; run a %%remote cell, %remote start or %remote attach."
            )
        assert self.kernel is not None
        return self.kernel

    def switch_kernel(
        self, kernel_name: str, *, session: str | None = None, force: bool = False
    ) -> RemoteKernel:
        """Give a session (this connection's, or the one at path ``session``) a new kernel of
        kernelspec ``kernel_name``. The server then shuts the old kernel down, so this raises
        :class:`~remote_magic.errors.KernelInUse` when another session or client uses it,
        unless ``force``."""
        model = self._session_model(session)
        old = model["kernel"]["id"]
        if not force:
            own = 1 if self.server.channel(old).is_open else 0
            sessions.check_not_shared(self.server, model, own_connections=own)
        self.server.forget_channel(old)
        new = self.server.sessions.patch(model["id"], kernel={"name": kernel_name})
        kernel = RemoteKernel(self.server, new["kernel"]["id"])
        self.attached.discard(old)
        if old in self.started:  # the new kernel belongs to whoever owned the old one
            self.started.discard(old)
            self._started(kernel.id)
        if self.kernel is None or self.kernel.id == old:
            self._use_session(new)
        return kernel

    def _session_model(self, path: str | None) -> dict[str, Any]:
        """The session at ``path``; else the one of the default kernel; else this connection's own."""
        if path:
            found = self.server.sessions.find(path.lstrip("/"))
            if found is None:
                raise NotFound(f"No session at {path} on {self.server.url}; %remote sessions lists them.")
            return found
        if self.kernel is None:  # e.g. its own session runs another kernelspec than kernel_name
            own = self.server.sessions.find(self.session_path)
            if own is not None:
                return own
        kernel = self.find_kernel()
        using = sessions.sessions_using(self.server, kernel.id)
        mine = [s for s in using if s["id"] == self.session_id] or using
        if len(mine) != 1:
            raise UsageError(
                f"Kernel {kernel.id[:8]} is in {len(mine)} sessions; say which one with --session PATH."
                if mine
                else f"Kernel {kernel.id[:8]} has no session to switch; start one with %remote start SPEC --session PATH."
            )
        return mine[0]

    def shutdown_kernel(self, target: str | None = None) -> str:
        """Stop the kernel ``target`` names (default: this connection's); return its id. If it was
        the default kernel, the next cell gets a new one."""
        kernel = self.find_kernel(target)
        kernel.shutdown()
        self.started.discard(kernel.id)
        self.attached.discard(kernel.id)
        if self.kernel is not None and self.kernel.id == kernel.id:
            self.kernel, self.session_id = None, None
        return kernel.id

    def run(self, code: str, **options: Any) -> ExecutionResult:
        """Run ``code`` on the default kernel (see :meth:`RemoteKernel.run`)."""
        return self.default_kernel().run(code, **options)

    def push(self, values: dict[str, Any], **options: Any) -> None:
        """Assign ``values`` in the default kernel (see :meth:`RemoteKernel.push`)."""
        self.default_kernel().push(values, **options)

    def pull(self, names: str | list[str], **options: Any) -> Any:
        """Values of the default kernel's variables (see :meth:`RemoteKernel.pull`)."""
        return self.default_kernel().pull(names, **options)

    def leaves_running(self, *, stop_started: bool = True) -> dict[str, str]:
        """The kernels :meth:`close` would leave running (those still on the server), each with
        why: attached, not started here; or (``stop_started=False``) started here but kept."""
        reasons = dict.fromkeys(self.attached - self.started, "attached, not started here")
        if not stop_started:
            reasons.update(dict.fromkeys(self.started, "started here, kept as asked"))
        return {kernel_id: reasons[kernel_id] for kernel_id in sorted(still_running(self.server, set(reasons)))}

    def stop_unreachable(self) -> list[str]:
        """Stop the kernels this connection started that no later process can find: those in no
        session, or only in a session named after this process (a terminal, a script). Those in a
        session named after a notebook, or at a path chosen with ``start_session``, stay to be
        re-attached. Returns the ids of the kernels stopped; called at exit."""
        running = still_running(self.server, self.started)
        return self._shutdown(running - sessions.findable_kernels(self.server) if running else ())

    def _shutdown(self, kernel_ids: Iterable[str]) -> list[str]:
        stopped = []
        for kernel_id in sorted(kernel_ids):
            self.server.forget_channel(kernel_id)
            self.server.kernels.shutdown(kernel_id)
            self.started.discard(kernel_id)
            stopped.append(kernel_id)
        return stopped

    def close(self, *, stop_started: bool = True) -> list[str]:
        """Close websockets; stop the kernels this connection started (not attached ones).
        Returns the ids of the kernels stopped."""
        stopped = self._shutdown(still_running(self.server, self.started)) if stop_started else []
        self.started.clear()
        self.attached.clear()
        forget_at_exit(self)
        self.kernel, self.session_id = None, None
        if self._session_path is not None:
            sessions.release_session_path(self, self._session_path)
        self.server.close()
        while self.on_close:
            self.on_close.pop(0)()
        return stopped
