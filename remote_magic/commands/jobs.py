"""Background jobs: ``jobs``, ``wait``, ``result``, ``cancel`` (start one with ``%%remote --bg``)."""

from __future__ import annotations

import argparse
import sys
import time

from .. import jobs
from ..display import kernel_origin, remote_exception
from ..outputs import ExecutionResult
from ..tables import Table
from . import Context, arg, command

JOB = arg("job", nargs="?", metavar="JOB", help="job number or name (default: the latest job)")
JOBS = arg("job", nargs="?", metavar="JOB", help="job number or name (default: every job not ended yet)")


def _job(options: argparse.Namespace) -> jobs.Job:
    return jobs.default_table.get(options.job) if options.job else jobs.default_table.latest()


@command("jobs", "List the background jobs: id, name, connection, kernel, state, elapsed, cell.", group="run")
def list_jobs(context: Context, options: argparse.Namespace) -> Table:
    return jobs.default_table.listing()


@command(
    "wait",
    "Wait until a background job (default: every one) ends; a remote error fails this cell. Ctrl-C stops waiting, not the job.",
    JOBS,
    arg("--timeout", type=float, metavar="SECONDS", help="give up waiting after this long (the job goes on)"),
    group="run",
)
def wait(context: Context, options: argparse.Namespace) -> None:
    waited = [jobs.default_table.get(options.job)] if options.job else [job for job in jobs.default_table if not job.done()]
    deadline = None if options.timeout is None else time.monotonic() + options.timeout
    for job in waited:
        try:
            job.wait(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        except KeyboardInterrupt:
            print(f"Stopped waiting; job {job.id} ({job.name}) goes on (%remote cancel {job.id} stops it).", file=sys.stderr)
            raise
    failed = [job for job in waited if job.state == jobs.FAILED]
    for job in failed[1:]:
        print(f"Job {job.id} ({job.name}) failed too: {job.exception or job.error()}", file=sys.stderr)
    if failed:
        first = failed[0]
        raise first.exception if first.exception is not None else remote_exception(first.reply, kernel_origin(first.kernel.id, first.connection))


@command("result", "A finished background job's result: its outputs and execute_reply, as data.", JOB, group="run")
def result(context: Context, options: argparse.Namespace) -> ExecutionResult:
    job = _job(options)
    if not job.done():
        print(f"Job {job.id} ({job.name}) is {job.state}; waiting for it (Ctrl-C stops waiting).", file=sys.stderr)
    return job.result()


@command("cancel", "Cancel a background job: removed if queued, its kernel interrupted if running.", JOB, group="run")
def cancel(context: Context, options: argparse.Namespace) -> None:
    job = _job(options)
    was = job.state
    if not job.cancel():
        print(f"Job {job.id} ({job.name}) had already ended ({job.state}).")
    elif was == jobs.QUEUED:
        print(f"Job {job.id} ({job.name}) removed from the queue; it never ran.")
    else:
        print(f"Job {job.id} ({job.name}): kernel {job.kernel.id[:8]} interrupted.")
