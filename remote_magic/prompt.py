"""Yes/no questions for destructive subcommands, asked at the local frontend."""

from __future__ import annotations

from IPython.core.error import StdinNotImplementedError

from .errors import UsageError


def confirm(question: str, *, flag: str = "--yes") -> bool:
    """Ask ``question`` (answer y/yes to go on). Where nobody can answer (nbclient, papermill, a
    frontend without stdin) raise :class:`UsageError` naming ``flag`` instead of guessing."""
    try:
        answer = input(f"{question} [y/N] ")
    except (StdinNotImplementedError, EOFError, OSError):
        raise UsageError(f"Cannot ask for confirmation here; add {flag} to go ahead.") from None
    return answer.strip().lower() in ("y", "yes")
