"""``topology``: what runs where, as a diagram (or a text tree in terminals)."""

from __future__ import annotations

import argparse

from ..topology import gather
from ..topology_render import TopologyView
from . import Context, arg, command


@command(
    "topology",
    "Draw the current connection's server, sessions, kernels and (on this machine) processes and connection files.",
    arg("--all", dest="everything", action="store_true", help="every connection, every local server and every kernel connection file"),
    group="kernels & sessions",
)
def topology(context: Context, options: argparse.Namespace) -> TopologyView:
    return TopologyView(gather(context.registry, everything=options.everything))
