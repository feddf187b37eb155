"""Background jobs against a real Jupyter Server: the Python API, the magics in an InteractiveShell,
and a notebook run in a real local ipykernel where each job's output lands in its own cell.

A job that must still be running when the test looks waits, on the remote side, for a file the
test creates afterwards (bounded, so a broken job ends in a TimeoutError rather than a hang)."""

from __future__ import annotations

import json

import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete
from nbclient.util import ensure_async
from servers import execute_cells

from remote_magic import ExecutionTimeout, JobCancelled, JobTable, RequestDropped
from remote_magic.jobs import default_table

TOKEN_ENV = "RM_TEST_TOKEN"


def wait_for(path, then="", bound=30):
    """Remote code that blocks until ``path`` exists (at most ``bound`` seconds), then runs ``then``."""
    return (
        "import os, time\n"
        f"_deadline = time.time() + {bound}\n"
        f"while not os.path.exists({str(path)!r}):\n"
        "    if time.time() > _deadline:\n"
        f"        raise TimeoutError('nobody created {path}')\n"
        "    time.sleep(0.05)\n"
        f"{then}"
    )


@pytest.fixture
def conn(registry, jupyter_server):
    return registry.connect(jupyter_server.url, token=jupyter_server.token, name="alpha")


@pytest.fixture
def table():
    jobs = JobTable()
    yield jobs
    for job in jobs:
        job.cancel()
        job.wait(30)


def test_submit_returns_while_the_remote_still_runs(conn, table, tmp_path, wait_until):
    release = tmp_path / "release"
    job = table.submit(conn.default_kernel(), wait_for(release, "print('released')"), name="slow", connection="alpha")
    wait_until(lambda: conn.default_kernel().model()["execution_state"] == "busy", message="the job to run")
    assert job.state == "running" and not job.done()
    release.touch()
    assert job.wait(60) is job
    assert job.state == "done"
    assert job.result().text() == "released\n"
    assert job.outputs == [{"output_type": "stream", "name": "stdout", "text": "released\n"}]


def test_jobs_on_one_kernel_run_in_order_and_a_queued_one_can_be_cancelled(conn, table, tmp_path, wait_until):
    kernel = conn.default_kernel()
    release = tmp_path / "release"
    first = table.submit(kernel, "order = [1]\n" + wait_for(release))
    second = table.submit(kernel, "order.append(2)")
    third = table.submit(kernel, "order.append(3)\nprint(order)")
    wait_until(lambda: first.state == "running", message="the first job to start")
    assert (second.state, third.state) == ("queued", "queued")
    assert second.cancel() is True
    assert second.state == "cancelled" and second.done()
    release.touch()
    assert third.result(60).text() == "[1, 3]\n"  # the cancelled job never reached the kernel
    assert [job.state for job in (first, second, third)] == ["done", "cancelled", "done"]
    with pytest.raises(JobCancelled):
        second.result()


def test_cancel_interrupts_a_running_job_and_the_kernel_goes_on(conn, table, tmp_path, wait_until):
    job = table.submit(conn.default_kernel(), "print('waiting', flush=True)\n" + wait_for(tmp_path / "never", bound=60))
    wait_until(lambda: job.outputs, message="the job to print")
    assert job.cancel() is True
    job.wait(30)
    assert job.state == "cancelled"
    assert job.reply["ename"] == "KeyboardInterrupt"
    assert job.cancel() is False  # it has ended
    assert conn.run("40 + 2").result == {"text/plain": "42"}


def test_cancel_as_soon_as_it_leaves_the_queue_still_reaches_the_kernel(conn, table, tmp_path, wait_until):
    """Cancelled after it left the queue but maybe before the kernel began it: the interrupt is
    sent once the kernel has begun (an interrupt before then would be lost)."""
    job = table.submit(conn.default_kernel(), wait_for(tmp_path / "never", bound=60))
    wait_until(lambda: job.state == "running", timeout=30, message="the job to leave the queue")
    assert job.cancel() is True
    job.wait(30)
    assert job.state == "cancelled"


def test_cancel_while_the_kernel_prepares_the_code_ends_the_job(conn, table, hold_before_running, wait_until):
    """The interrupt lands before the job's code runs (on a fresh kernel IPython takes a while to
    prepare the first cell), where ipykernel drops the request without a reply: the job ends."""
    kernel = conn.default_kernel()
    held = hold_before_running(kernel)
    job = table.submit(kernel, "# hold\nprint('ran')")
    wait_until(held.exists, timeout=30, message="the kernel to hold the job's code")
    assert job.cancel() is True
    job.wait(30)
    assert job.state == "cancelled"
    assert isinstance(job.exception, RequestDropped)
    assert job.outputs == []


def test_a_failed_job_says_so_with_the_remote_error(conn, table):
    job = table.submit(conn.default_kernel(), "print('before')\n1/0", name="bad")
    job.wait(60)
    assert job.state == "failed"
    assert job.error().ename == "ZeroDivisionError"
    result = job.result()
    assert result.status == "error" and result.text() == "before\n"
    assert [row["state"] for row in table.listing() if row["name"] == "bad"] == ["failed"]


def test_wait_gives_up_after_its_timeout_and_the_job_goes_on(conn, table, tmp_path, wait_until):
    job = table.submit(conn.default_kernel(), wait_for(tmp_path / "release"))
    with pytest.raises(ExecutionTimeout, match="cancel"):
        job.wait(0.2)
    assert not job.done()
    (tmp_path / "release").touch()
    assert job.wait(60).state == "done"


def test_jobs_on_two_kernels_overlap(conn, table, tmp_path):
    """Each job says it started, then waits for the other to start: run one after the other, the
    first would give up (TimeoutError). The remote clocks show the overlap."""
    kernels = [conn.start_kernel(make_default=False) for _ in range(2)]
    marks = [tmp_path / "a-started", tmp_path / "b-started"]
    code = "import time, json\nstart = time.time()\nopen({mine!r}, 'w').close()\n{wait}print(json.dumps([start, time.time()]))"
    jobs = [
        table.submit(kernel, code.format(mine=str(mine), wait=wait_for(other, bound=20)))
        for kernel, mine, other in zip(kernels, marks, reversed(marks))
    ]
    for job in jobs:
        job.wait(60)
    assert [job.state for job in jobs] == ["done", "done"], [job.outputs for job in jobs]
    (a_start, a_end), (b_start, b_end) = (json.loads(job.result().text()) for job in jobs)
    assert a_start < b_end and b_start < a_end


# ------------------------------------------------------------------------------------ the magics


@pytest.fixture
def magic_jobs():
    """Jobs the magics start in this test are cancelled afterwards."""
    before = {job.id for job in default_table}
    yield default_table
    for job in default_table:
        if job.id not in before:
            job.cancel()
            job.wait(30)


def test_bg_cell_returns_at_once_and_wait_result_jobs_report(remote_shell, magic_jobs, tmp_path, wait_until):
    release = tmp_path / "release"
    job = remote_shell.run_cell("%%remote --bg --name slow\n" + wait_for(release, "print('slow done')\n'value'")).result
    assert job.name == "slow" and not job.done()
    assert remote_shell.run_cell("local = 20 + 22").success  # the local shell is free meanwhile
    wait_until(lambda: job.state == "running", message="the job to start")
    rows = [row for row in remote_shell.run_line_magic("remote", "jobs") if row["name"] == "slow"]
    assert [(row["connection"], row["state"], row["cell"]) for row in rows] == [("test", "running", "import os, time")]
    release.touch()
    remote_shell.run_line_magic("remote", "wait slow")
    assert job.state == "done"
    result = remote_shell.run_line_magic("remote", "result slow")
    assert result.text() == "slow done\n" and result.result == {"text/plain": "'value'"}


def test_wait_fails_the_cell_with_the_remote_error_of_the_job(remote_shell, magic_jobs):
    job = remote_shell.run_cell("%%remote --bg --name broken\n1/0").result
    outcome = remote_shell.run_cell("%remote wait broken")
    assert type(outcome.error_in_exec).__name__ == "ZeroDivisionError"
    assert job.state == "failed"
    assert [row["state"] for row in remote_shell.run_line_magic("remote", "jobs") if row["id"] == job.id] == ["failed"]


def test_cancel_magic_interrupts_the_running_job(remote_shell, magic_jobs, tmp_path, wait_until, capsys):
    job = remote_shell.run_cell("%%remote --bg\n" + wait_for(tmp_path / "never", bound=60)).result
    wait_until(lambda: job.state == "running", message="the job to start")
    remote_shell.run_line_magic("remote", f"cancel {job.id}")
    assert "interrupted" in capsys.readouterr().out
    job.wait(30)
    assert job.state == "cancelled"
    outcome = remote_shell.run_cell("%remote result nosuchjob")
    assert "No job 'nosuchjob'" in str(outcome.error_in_exec)


# ------------------------------------------------------------------------------- in a notebook


class KeepsCellsListening(NotebookClient):
    """nbclient, but output that names a finished cell still goes into that cell, as in JupyterLab
    (its output area keeps listening to a cell's request until the cell runs again or is cleared).
    Plain nbclient drops such output."""

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        earlier = self.__dict__.setdefault("_cells_by_request", {})
        earlier[parent_msg_id] = (cell, cell_index)
        while True:
            msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=None))
            parent = msg["parent_header"].get("msg_id")
            if parent == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return
            elif parent in earlier and msg["msg_type"] in ("stream", "display_data", "update_display_data", "error"):
                self.process_message(msg, *earlier[parent])


def _text(cell):
    return "".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in cell.outputs)


def test_job_output_lands_in_the_cell_that_started_it(jupyter_server, monkeypatch, tmp_path):
    monkeypatch.setenv(TOKEN_ENV, jupyter_server.token)
    release = tmp_path / "release"
    cells = [
        f"%load_ext remote_magic\n%remote connect {jupyter_server.url} --token-env {TOKEN_ENV} --name nb",
        "%%remote --bg --name report\n"
        + wait_for(release, "print('from the job')\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>job html</b>'))\n"),
        "%%remote --bg --name broken\nraise ValueError('job went wrong')",
        f"open({str(release)!r}, 'w').close()\nprint('a local cell ran while the job waited')",
        "%remote wait report",
        "%remote wait broken",
        "print('after')",
    ]
    nb = execute_cells(cells, tmp_path, client=KeepsCellsListening, allow_errors=True)
    started, broken, local, wait_ok, wait_broken, after = nb.cells[1:]
    assert "from the job" in _text(started) and "job html" in _text(started)
    assert "ValueError" in _text(broken) and "job went wrong" in _text(broken)  # its own traceback
    for other in (local, wait_ok, after):
        assert "from the job" not in _text(other) and "ValueError" not in _text(other)
    assert [o for o in wait_ok.outputs if o["output_type"] == "error"] == []
    errors = [o for o in wait_broken.outputs if o["output_type"] == "error"]
    assert [(o["ename"], o["evalue"]) for o in errors] == [("ValueError", "job went wrong")]
