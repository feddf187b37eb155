"""Variables: ``push`` and ``pull`` between the local namespace and the remote kernel's."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..variables import pull_names, push_names
from . import Context, arg, command

CONN = arg("-c", "--conn", metavar="NAME", help="connection (default: the current one)")
KERNEL = arg("--kernel", metavar="ID|SPEC", help="a kernel other than the connection's default (as %%remote --kernel)")
PICKLE = arg(
    "--pickle",
    action="store_true",
    help="allow pickle for values without a safe format (unpickling runs code on the receiving side)",
)
SAFE = "Safe formats: JSON-compatible values, bytes, numpy arrays, pandas DataFrames and Series."


@command(
    "push",
    "Copy local variables into the remote kernel.",
    arg("names", nargs="+", metavar="NAME"),
    arg("--as", dest="rename", metavar="REMOTE", help="the remote name (one NAME only)"),
    PICKLE,
    KERNEL,
    CONN,
    epilog=SAFE,
    group="variables",
)
def push(context: Context, options: argparse.Namespace) -> None:
    _move(push_names, context, options)


@command(
    "pull",
    "Copy remote variables into the local namespace.",
    arg("names", nargs="+", metavar="NAME"),
    arg("--as", dest="rename", metavar="LOCAL", help="the local name (one NAME only)"),
    PICKLE,
    KERNEL,
    CONN,
    epilog=SAFE + " Pulling anything else needs --pickle: only if you trust the remote kernel.",
    group="variables",
)
def pull(context: Context, options: argparse.Namespace) -> None:
    _move(pull_names, context, options)


def _move(move: Callable[..., None], context: Context, options: argparse.Namespace) -> None:
    """Push or pull (``move``) the named variables with the options both commands share."""
    kernel = context.connection(options.conn).kernel_for(options.kernel)
    context.magic.move_variables(move, kernel, options.names, options, rename=options.rename)
