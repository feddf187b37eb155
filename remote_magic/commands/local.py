"""What runs on this machine: ``kernels --local`` (connection files and their kernels) and
``prune-connection-files``."""

from __future__ import annotations

import argparse

from ..connfiles import LocalKernel, local_kernels, prune_connection_files
from ..discovery import runtime_dir
from ..prompt import confirm
from ..tables import Table
from . import Context, arg, command


def local_kernel_table() -> Table:
    """The connection files of the runtime directory: kernel id, whether it answers, pid, owning server."""
    rows = [
        {
            "kernel_id": kernel.file.kernel_id,
            "answers": "yes" if kernel.answers else "no",
            "pid": kernel.process.pid if kernel.process else None,
            "server": kernel.server.url if kernel.server else None,
            "kernel_name": kernel.file.kernel_name,
            "file": kernel.file.path,
        }
        for kernel in local_kernels()
    ]
    return Table(
        rows,
        ["kernel_id", "answers", "pid", "server", "kernel_name", "file"],
        title=f"Kernel connection files in {runtime_dir()}",
        empty="(no kernel connection files)",
    )


@command(
    "prune-connection-files",
    "Remove the connection files of kernels that are gone (asks first unless --yes; never a live kernel's).",
    arg("--yes", "-y", action="store_true", help="do not ask for confirmation"),
    group="kernels & sessions",
)
def prune(context: Context, options: argparse.Namespace) -> None:
    def ask(stale: list[LocalKernel]) -> bool:
        names = ", ".join(kernel.file.path for kernel in stale)
        return options.yes or confirm(f"Remove {len(stale)} stale connection file{'s' if len(stale) != 1 else ''}: {names}?")

    removed = prune_connection_files(confirm=ask)
    print(f"Removed {len(removed)} stale connection file{'s' if len(removed) != 1 else ''}.")
    for path in removed:
        print(f"  {path}")
