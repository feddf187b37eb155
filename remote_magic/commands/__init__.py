"""The ``%remote`` subcommand table. Each subcommand is an argparse parser plus one function.

Modules in this package register their subcommands with :func:`command` when imported; the
magic only looks a name up here, parses, and calls.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..magics import RemoteMagic
    from ..registry import Connection, Registry

class HelpShown(Exception):
    """Raised after ``--help`` printed its text: nothing more to do."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises one-line :class:`UsageError`s instead of exiting the process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise HelpShown()


@dataclass
class Context:
    """What a subcommand may use: the registry and the magic's settings."""

    registry: Registry
    magic: RemoteMagic

    def connection(self, name: str | None = None) -> Connection:
        return self.registry.get(name)


Handler = Callable[[Context, argparse.Namespace], Any]


@dataclass
class Command:
    name: str
    summary: str
    parser: ArgumentParser
    handler: Handler


COMMANDS: dict[str, Command] = {}


def arg(*names: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One ``add_argument`` call, for :func:`command`."""
    return names, options


def command(name: str, summary: str, *arguments: tuple[tuple[str, ...], dict[str, Any]], epilog: str | None = None):
    """Register ``%remote NAME``; ``summary`` is its one-line help."""

    def register(handler: Handler) -> Handler:
        parser = ArgumentParser(
            prog=f"%remote {name}",
            description=summary,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for names, options in arguments:
            parser.add_argument(*names, **options)
        COMMANDS[name] = Command(name, summary, parser, handler)
        return handler

    return register


def load_all() -> dict[str, Command]:
    """Import every subcommand module of this package once; return the table."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return COMMANDS


def overview() -> str:
    """The text of ``%remote --help``."""
    width = max(len(name) for name in COMMANDS)
    lines = [
        "Usage: %remote SUBCOMMAND [options]    (%remote SUBCOMMAND --help for its options)",
        "       %%remote [-c NAME] [--kernel ID|SPEC] [--timeout S]   run the cell remotely",
        "       %%remote --bg [--name JOB] | --on NAMES|all   in the background | on several connections",
        "",
        "Subcommands:",
    ]
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in sorted(COMMANDS.items())]
    lines += ["", "Settings: %config RemoteMagic (e.g. %config RemoteMagic.timeout = 60)"]
    return "\n".join(lines)


def dispatch(context: Context, line: str) -> Any:
    """Run one ``%remote`` line; returns what the subcommand returns."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%remote: cannot parse the line ({exc}); check its quotes.") from None
    commands = load_all()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(overview())
        return None
    found = commands.get(argv[0])
    if found is None:
        raise UsageError(f"%remote: unknown subcommand {argv[0]!r}; run %remote --help for the list.")
    try:
        options = found.parser.parse_args(argv[1:])
    except HelpShown:
        return None
    return found.handler(context, options)
