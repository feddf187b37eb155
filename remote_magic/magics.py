"""``%remote`` and ``%%remote``: parse, route, show. The work is done by the API underneath."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode

from . import fanout, jobs
from .celloutput import CellOutput
from .commands import ArgumentParser, Context, HelpShown, dispatch
from .display import LiveDisplay, kernel_origin, remote_exception
from .errors import RemoteMagicError, UsageError
from .kernel import ask_locally
from .progress import showing_progress
from .registry import Registry
from .variables import DEFAULT_MAX_BYTES, pull_names, push_names

CELL_PARSER = ArgumentParser(
    prog="%%remote",
    description="Run the cell on a remote kernel; outputs stream back live.",
    epilog="Settings: %config RemoteMagic",
)
CELL_PARSER.add_argument("-c", "--conn", metavar="NAME", help="connection to use (default: the current one)")
CELL_PARSER.add_argument(
    "--kernel",
    metavar="ID|SPEC",
    help="a running kernel id (or unique prefix), or a kernelspec name: this connection's kernel of that spec",
)
CELL_PARSER.add_argument("--timeout", type=float, metavar="SECONDS", help="interrupt the remote kernel after this long")
CELL_PARSER.add_argument(
    "--no-raise", action="store_true", help="show a remote error without failing the local cell"
)
CELL_PARSER.add_argument("-i", dest="inputs", nargs="+", action="extend", default=[], metavar="NAME", help="push these local variables first")
CELL_PARSER.add_argument("-o", dest="outputs", nargs="+", action="extend", default=[], metavar="NAME", help="pull these remote variables after the cell")
CELL_PARSER.add_argument("--pickle", action="store_true", help="let -i/-o use pickle for values without a safe format")
CELL_PARSER.add_argument("--bg", action="store_true", help="run in the background: return at once, outputs keep coming into this cell")
CELL_PARSER.add_argument("--name", metavar="JOB", help="name the background job (implies --bg)")
CELL_PARSER.add_argument("--on", metavar="NAMES", help="run on these connections in parallel: alpha,beta or all; outputs labelled")


@magics_class
class RemoteMagic(Magics):
    """Run cells on a remote Jupyter kernel. Settings: ``%config RemoteMagic.<name> = value``."""

    cell_parser = CELL_PARSER  # its usage line heads %remote --help

    timeout = Float(
        None, allow_none=True, help="Seconds a %%remote cell may run before the remote kernel is interrupted (None: no limit)."
    ).tag(config=True)
    raise_on_error = Bool(True, help="A remote error fails the local cell (so Run All, nbclient and papermill stop).").tag(
        config=True
    )
    kernel_name = Unicode("", help="Kernelspec for kernels started on first use ('' : the server's default).").tag(config=True)
    interrupt_on_timeout = Bool(True, help="Interrupt the remote kernel when a cell's timeout runs out.").tag(config=True)
    protocol = CaselessStrEnum(
        ["auto", "v1", "legacy"], "auto", help="Kernel websocket protocol for new connections."
    ).tag(config=True)
    ping_timeout = Float(
        10.0,
        help="Seconds a kernel websocket may stay silent, although pinged, before the link is taken for dead "
        "(a cell waiting on it then fails with ConnectionLost); for new connections.",
    ).tag(config=True)
    safe_outputs = Bool(
        False,
        help="Show only inert remote output (text, images, HTML without scripts, handlers or remote "
        "resources; never JavaScript) and say what was held back. For kernels you do not fully trust.",
    ).tag(config=True)
    max_variable_bytes = Int(
        DEFAULT_MAX_BYTES, help="Largest push or pull (%remote push/pull, %%remote -i/-o), in bytes, all its values together."
    ).tag(config=True)

    def __init__(self, shell: Any = None, registry: Registry | None = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        if registry is None:
            from . import registry as default_registry

            registry = default_registry
        self.registry = registry

    @line_cell_magic
    def remote(self, line: str, cell: str | None = None) -> Any:
        """%remote SUBCOMMAND [options]   (%remote --help lists them)
        %%remote [-c NAME] [--kernel ID|SPEC] [--timeout S] [--no-raise] [-i NAME] [-o NAME]   run the cell remotely
        %%remote --bg [--name JOB]   in the background;   %%remote --on alpha,beta|all   on several connections
        """
        if cell is None:
            scrub_tokens_from_history(self.shell, line)  # before anything can fail
            return dispatch(Context(self.registry, self), line)
        try:
            options = CELL_PARSER.parse_args(_split(line))
        except HelpShown:
            return None
        return self.run_remote(cell, options)

    def run_remote(self, code: str, options: argparse.Namespace) -> Any:
        """Run ``code`` remotely, showing outputs as they arrive; return the remote result."""
        timeout = options.timeout if options.timeout is not None else self.timeout
        if options.on:
            return self.run_on(code, options, timeout)
        if (options.bg or options.name) and (options.inputs or options.outputs):
            raise UsageError("%%remote: -i/-o push before and pull after a foreground cell; with --bg, %remote push first and %remote pull after %remote wait.")
        connection = self.registry.get(options.conn)
        if connection.kernel_name is None and self.kernel_name:
            connection.kernel_name = self.kernel_name
        kernel = connection.kernel_for(options.kernel)
        origin = kernel_origin(kernel.id, connection.name)
        if options.bg or options.name:
            cell = CellOutput.capture(self.shell)
            safe = self.safe_outputs or connection.safe_outputs
            return jobs.default_table.submit(
                kernel, code, name=options.name, connection=connection.name, timeout=timeout, cell=cell, safe_outputs=safe
            )
        jobs.default_table.note_busy(kernel)
        display = LiveDisplay(safe_outputs=self.safe_outputs or connection.safe_outputs, origin=origin)
        if options.inputs:
            self.move_variables(push_names, kernel, options.inputs, options)

        def interrupt() -> None:
            display.interrupted()
            kernel.interrupt()

        try:
            kernel.stream(
                code,
                display,
                input=ask_locally if _local_stdin_allowed(self.shell) else None,
                timeout=timeout,
                on_timeout=kernel.interrupt if self.interrupt_on_timeout else None,
                on_keyboard_interrupt=interrupt,
            )
        except RemoteMagicError:
            display.show_error()  # e.g. where the remote code was when a timeout interrupted it
            raise
        finally:
            display.finish()
        if display.error is not None:
            if self.raise_on_error and not options.no_raise:
                raise remote_exception(display.error, origin)
            display.show_error()
        elif options.outputs:
            self.move_variables(pull_names, kernel, options.outputs, options)
        return display.result

    def move_variables(self, move: Callable[..., None], kernel: Any, names: list[str], options: argparse.Namespace, *, rename: str | None = None) -> None:
        """Push or pull (``move``) the variables ``names`` of this shell, with progress shown,
        pickle as the options ask, and the size limit of :attr:`max_variable_bytes`."""
        verb = "Pushing" if move is push_names else "Pulling"
        with showing_progress(f"{verb} {', '.join(names)}") as progress:
            move(kernel, self.shell.user_ns, names, rename=rename, progress=progress, pickle=options.pickle, max_bytes=self.max_variable_bytes)

    def run_on(self, code: str, options: argparse.Namespace, timeout: float | None) -> None:
        """``--on NAMES``: the cell on several connections at once, outputs labelled."""
        if options.bg or options.name or options.conn or options.inputs or options.outputs:
            raise UsageError("%%remote: --on runs in the foreground on the connections it names; drop --bg/--name/--conn/-i/-o.")
        raise_on_error = self.raise_on_error and not options.no_raise
        fanout.show_on(
            self.registry, options.on, code, kernel=options.kernel, timeout=timeout, safe_outputs=self.safe_outputs, raise_on_error=raise_on_error
        )


_TOKEN_IN_URL = re.compile(r"(token=)([^\s&#'\"]+)")
_HIDDEN = "<hidden>"


def scrub_tokens_from_history(shell: Any, line: str) -> None:
    """Replace each ``token=VALUE`` of ``line`` by ``token=<hidden>`` wherever this session's
    IPython history keeps it: ``In``/``_ih``, the ``_i`` variables, the cache and the database."""
    values = {match.group(2) for match in _TOKEN_IN_URL.finditer(line)} - {_HIDDEN}
    history = getattr(shell, "history_manager", None)
    if not values or history is None:
        return

    def scrub(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        return _TOKEN_IN_URL.sub(lambda m: m.group(1) + _HIDDEN if m.group(2) in values else m.group(0), text)

    for lines in (history.input_hist_parsed, history.input_hist_raw):  # In and _ih are the first
        lines[:] = [scrub(text) for text in lines]
    for name in ("_i", "_ii", "_iii", "_i00"):
        setattr(history, name, scrub(getattr(history, name, "")))
    namespace = getattr(shell, "user_ns", {})
    for name in [n for n in namespace if re.fullmatch(r"_i(i{0,2}|\d+)", n)]:
        namespace[name] = scrub(namespace[name])
    with history.db_input_cache_lock:  # the saving thread writes the cache under this lock
        history.db_input_cache[:] = [tuple(scrub(part) for part in entry) for entry in history.db_input_cache]
        database = getattr(history, "db", None)
        if hasattr(database, "execute"):  # entries already saved (a DummyDB when history is off)
            rows = database.execute(
                "SELECT line, source, source_raw FROM history WHERE session = ? AND source_raw LIKE '%token=%'",
                (history.session_number,),
            ).fetchall()
            with database:
                database.executemany(
                    "UPDATE history SET source = ?, source_raw = ? WHERE session = ? AND line = ?",
                    [(scrub(source), scrub(raw), history.session_number, number) for number, source, raw in rows],
                )


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%remote: cannot parse the options ({exc}); check the quotes.") from None


def _local_stdin_allowed(shell: Any) -> bool:
    """False when the local frontend cannot answer input() (e.g. nbclient), so the remote says so at once."""
    kernel = getattr(shell, "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", True))
