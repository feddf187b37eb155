"""The ``%remote`` subcommand table. Each subcommand is an argparse parser plus one function.

Modules in this package register their subcommands with :func:`command` when imported; the
magic only looks a name up here, parses, and calls.
"""

from __future__ import annotations

import argparse
import html
import importlib
import pkgutil
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..frontend import text_width
from ..helptext import HelpFormatter, HelpText, show, suggestion, wrap

if TYPE_CHECKING:
    from ..connection import Connection
    from ..magics import RemoteMagic
    from ..registry import Registry

class HelpShown(Exception):
    """Raised after ``--help`` printed its text: nothing more to do."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises one-line :class:`UsageError`s (suggesting the closest option for a
    misspelt one) instead of exiting the process, and shows its help as a cell output."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = ""
        if message.startswith("unrecognized arguments: "):
            unknown = next((word for word in message.split()[2:] if word.startswith("-")), "")
            hint = suggestion(unknown.split("=")[0], self._option_string_actions) if unknown else ""
        raise UsageError(f"{self.prog}: {message}{hint} (see {self.prog} --help)")

    def print_help(self, file: Any = None) -> None:  # type: ignore[override]
        show(HelpText(self.format_help().rstrip("\n")))

    def usage_line(self) -> str:
        """The usage, on one line, without ``[-h]``: ``%%remote [-c NAME] …``."""
        usage = argparse.HelpFormatter(self.prog, width=10_000)
        usage.add_usage(self.usage, self._actions, self._mutually_exclusive_groups, prefix="")
        return usage.format_help().strip().replace(" [-h]", "")

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
    group: str = "other"


COMMANDS: dict[str, Command] = {}

#: The order of the groups in ``%remote --help``; a group not listed here comes after them.
GROUPS: list[str] = ["connect", "run", "variables", "files", "kernels & sessions", "servers"]


def arg(*names: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One ``add_argument`` call, for :func:`command`."""
    return names, options


def command(
    name: str,
    summary: str,
    *arguments: tuple[tuple[str, ...], dict[str, Any]],
    epilog: str | None = None,
    group: str = "other",
):
    """Register ``%remote NAME``; ``summary`` is its one-line help, ``group`` its heading in
    ``%remote --help`` (see :data:`GROUPS`)."""

    def register(handler: Handler) -> Handler:
        parser = ArgumentParser(prog=f"%remote {name}", description=summary, epilog=epilog)
        for names, options in arguments:
            parser.add_argument(*names, **options)
        COMMANDS[name] = Command(name, summary, parser, handler, group)
        return handler

    return register


def load_all() -> dict[str, Command]:
    """Import every subcommand module of this package once; return the table."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return COMMANDS


def overview(cell_parser: ArgumentParser | None = None) -> HelpText:
    """``%remote --help``: the usage, then the subcommands by task. ``cell_parser`` gives the
    ``%%remote`` usage line. As text, summaries wrap to the terminal; as HTML, a table per group."""
    cell_usage = cell_parser.usage_line() if cell_parser else "%%remote [options]"
    width, column = text_width(), max(len(name) for name in COMMANDS) + 4
    head = [
        "Usage: " + wrap("%remote SUBCOMMAND [options]    a subcommand (%remote SUBCOMMAND --help: its options)", width, 9),
        "       " + wrap(f"{cell_usage}    the cell, on the remote kernel", width, 9),
    ]
    settings = "Settings: %config RemoteMagic (e.g. %config RemoteMagic.timeout = 60)"
    usages = [("%remote SUBCOMMAND [options]", "a subcommand (%remote SUBCOMMAND --help: its options)"),
              (cell_usage, "the cell, on the remote kernel")]
    text, markup = list(head), ["".join(f"<div><code>{_unbroken_options(usage)}</code> &mdash; {html.escape(what)}</div>"
                                        for usage, what in usages)]
    for group in sorted({cmd.group for cmd in COMMANDS.values()}, key=_group_rank):
        title = group[0].upper() + group[1:] + ":"
        members = [cmd for cmd in COMMANDS.values() if cmd.group == group]
        text += ["", title] + [f"  {cmd.name.ljust(column - 2)}{wrap(cmd.summary, width, column)}" for cmd in members]
        rows = "".join(
            f"<tr><td style='{_NAME_STYLE}'><code style='white-space:nowrap'>{html.escape(cmd.name)}</code></td>"
            f"<td style='{_SUMMARY_STYLE}'>{html.escape(cmd.summary)}</td></tr>"
            for cmd in members
        )
        markup.append(f"<b>{html.escape(title)}</b><table class='rm-help-group' style='margin:0 0 0.6em 1em'>{rows}</table>")
    text += ["", wrap(settings, width, 10)]
    markup.append(html.escape(settings))
    return HelpText("\n".join(text), f"<div class='rm-help'>{''.join(markup)}</div>")


_NAME_STYLE = "text-align:left;vertical-align:baseline;white-space:nowrap;padding:0.2em 1em 0.2em 0"
_SUMMARY_STYLE = "text-align:left;vertical-align:baseline;word-break:normal;overflow-wrap:break-word;padding:0.2em 0"


def _unbroken_options(usage: str) -> str:
    """A usage line as HTML that wraps between its options, never inside one (``[--timeout SECONDS]``)."""
    parts = re.split(r"(\[[^\]]*\])", usage)
    return "".join(
        f"<span style='white-space:nowrap'>{html.escape(part)}</span>" if part.startswith("[") else html.escape(part)
        for part in parts
    )


def _group_rank(group: str) -> tuple[int, str]:
    return (GROUPS.index(group), "") if group in GROUPS else (len(GROUPS), group)


def dispatch(context: Context, line: str) -> Any:
    """Run one ``%remote`` line; returns what the subcommand returns."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%remote: cannot parse the line ({exc}); check its quotes.") from None
    commands = load_all()
    if not argv or argv[0] in ("-h", "--help", "help"):
        show(overview(getattr(context.magic, "cell_parser", None)))
        return None
    found = commands.get(argv[0])
    if found is None:
        hint = suggestion(argv[0], commands)
        raise UsageError(f"%remote: unknown subcommand {argv[0]!r}{hint}; run %remote --help for the list.")
    try:
        options = found.parser.parse_args(argv[1:])
    except HelpShown:
        return None
    return found.handler(context, options)
