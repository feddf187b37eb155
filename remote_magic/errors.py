"""Named exceptions: each one a failure a user can cause, with a one-line message saying what to do."""

from __future__ import annotations


class RemoteMagicError(Exception):
    """Base class of every error this package raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback from inside the package.
        return [f"{type(self).__name__}: {self}"]


class UsageError(RemoteMagicError):
    """The call itself is wrong (bad option, missing argument, unknown name)."""


class AuthenticationError(RemoteMagicError):
    """The server refused the token (HTTP 401/403)."""


class ServerUnreachable(RemoteMagicError):
    """No server answered at that address (unknown host, refused, timed out, TLS failure)."""


class NotAJupyterServer(RemoteMagicError):
    """Something answered, but not with the Jupyter Server REST API."""


class NotFound(RemoteMagicError):
    """The kernel, session or path does not exist on the server (HTTP 404)."""


class AlreadyExists(RemoteMagicError):
    """The target of a write, upload, download or rename exists and overwriting was not asked for."""


class ServerError(RemoteMagicError):
    """The server answered with an error of its own (HTTP 4xx/5xx other than the above)."""


class ConnectionLost(RemoteMagicError):
    """The kernel websocket dropped and could not be re-established."""


class KernelDied(RemoteMagicError):
    """The remote kernel died or was restarted while a request was pending."""


class ProtocolError(RemoteMagicError):
    """The server sent a message that is not valid Jupyter protocol."""


class RequestDropped(RemoteMagicError):
    """The kernel ended a request without replying to it (ipykernel does so when an interrupt
    reaches it while it prepares or wraps up a cell, outside the cell's code)."""


class ExecutionTimeout(RemoteMagicError):
    """An execution did not finish before its deadline."""


class KernelInUse(UsageError):
    """The kernel is shared with another session or client, so replacing it would stop it under them."""


class ConnectionNotFound(UsageError):
    """No connection with that name is registered."""


class RemoteExecutionError(RemoteMagicError):
    """The remote code raised; carries the remote exception name, value and traceback."""

    def __init__(self, ename: str, evalue: str, traceback: list[str] | None = None, origin: str | None = None):
        super().__init__(f"{ename}: {evalue}" if evalue else ename)
        self.ename = ename
        self.evalue = evalue
        self.traceback = list(traceback or [])
        self.origin = origin  # "kernel 1a2b3c4d of connection 'gpu'": where it was raised

    def _render_traceback_(self) -> list[str]:
        lines = self.traceback or [str(self)]
        return [remote_header(self.origin), *lines] if self.origin else lines


def remote_header(origin: str) -> str:
    """The line above a remote traceback: whose it is, and that its cell numbers are the remote
    kernel's (a local ``[8]`` may show ``Cell In[5]``)."""
    return f"\x1b[1;36mRemote error\x1b[0m on {origin} (its Cell In[n] numbers are that kernel's):"


class NotOffered(RemoteMagicError):
    """The server does not offer this (a gateway has no files and does not list its kernels, say)."""


class NotPermitted(RemoteMagicError):
    """The server refused a request for a reason of its own, not the credentials (HTTP 403)."""


class VariableError(RemoteMagicError):
    """A variable could not be pushed or pulled (too large, missing, a library lacking on one side)."""


class PickleRequired(VariableError):
    """Only pickle can carry the value, and pickle was not asked for (unpickling runs the sender's code)."""


class TargetsFailed(RemoteMagicError):
    """A cell run on several connections failed on some of them; ``failed`` maps each name to its result."""

    def __init__(self, failed: dict, succeeded: list[str]):
        reasons = "; ".join(f"{name} ({result.reply.get('ename')}: {result.reply.get('evalue')})" for name, result in failed.items())
        ok = f"; it succeeded on {', '.join(succeeded)}" if succeeded else ""
        super().__init__(f"The cell failed on {reasons}{ok}. Each target's traceback is shown above, labelled.")
        self.failed = failed
        self.succeeded = succeeded
