"""``%remote connect --existing``: a kernel known only by its connection file, over ZMQ, behind the
same kernel interface and live display; ``kernels --local`` and pruning stale connection files."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from barekernel import running_bare_kernel, stale_connection_file

from remote_magic import Registry
from remote_magic.connfiles import local_kernels, prune_connection_files
from remote_magic.errors import KernelDied, NotOffered, UsageError
from remote_magic.existing import connect_existing


@pytest.fixture
def bare_kernel():
    """A kernel only its connection file knows."""
    yield from running_bare_kernel()


@pytest.fixture
def bare_registry():
    reg = Registry()
    yield reg
    reg.clear()


def test_cells_outputs_and_errors_through_the_magic(shell, bare_kernel, capsys):
    shell.run_line_magic("remote", f"connect --existing {bare_kernel.kernel_id} --name bare")
    assert "Connected 'bare'" in capsys.readouterr().out
    shell.run_cell_magic("remote", "", "state = 21\nprint('from the bare kernel', os_pid := __import__('os').getpid())")
    assert f"from the bare kernel {bare_kernel.pid}" in capsys.readouterr().out
    result = shell.run_cell_magic("remote", "", "state * 2")
    assert repr(result) == "42"
    outcome = shell.run_cell("%%remote\n1/0")
    assert type(outcome.error_in_exec).__name__ == "ZeroDivisionError"


def test_newest_file_by_default_and_ids_by_prefix(bare_registry, bare_kernel):
    stale = stale_connection_file("stale-0002")
    os.utime(bare_kernel.path)  # the newest of the runtime directory
    connection = connect_existing(bare_registry)
    assert connection.connection_file == os.path.realpath(bare_kernel.path)
    os.utime(stale)  # now the stale one is the newest: a prefix still finds the live one
    other = connect_existing(bare_registry, bare_kernel.kernel_id[:8], name="by-prefix")
    assert other.run("1 + 1").result["text/plain"] == "2"
    os.remove(stale)
    with pytest.raises(UsageError, match="No kernel connection file"):
        connect_existing(bare_registry, "no-such-kernel")


def test_interrupt_and_timeout_interrupt_the_bare_kernel(bare_registry, bare_kernel):
    connection = connect_existing(bare_registry)
    kernel = connection.default_kernel()
    started = threading.Event()

    def on_message(msg):
        if msg["msg_type"] == "stream" and "sleeping" in msg["content"]["text"]:
            started.set()

    timer = threading.Thread(target=lambda: started.wait(30) and kernel.interrupt())
    timer.start()
    result = kernel.run("import time\nprint('sleeping', flush=True)\ntime.sleep(60)", on_message=on_message)
    timer.join()
    assert result.error().ename == "KeyboardInterrupt"
    assert kernel.run("'still alive'").result["text/plain"] == "'still alive'"
    from remote_magic.errors import ExecutionTimeout

    with pytest.raises(ExecutionTimeout):
        kernel.run("import time\ntime.sleep(60)", timeout=1, on_timeout=kernel.interrupt)
    assert kernel.run("'after the timeout'").result["text/plain"] == "'after the timeout'"


def test_input_is_answered_locally(bare_registry, bare_kernel):
    kernel = connect_existing(bare_registry).default_kernel()
    result = kernel.run("print(input('name? ') * 2)", input=lambda prompt, password: "ab")
    assert "abab" in result.text()


def test_what_needs_a_server_is_refused_in_one_line(shell, bare_kernel):
    shell.run_line_magic("remote", "connect --existing")
    for line in ("sessions", "kernels", "kernelspecs", "restart", "start python3", "attach x"):
        with pytest.raises(NotOffered) as caught:
            shell.run_line_magic("remote", line)
        assert "\n" not in str(caught.value)


def test_a_dead_kernel_is_a_clear_error(bare_registry, bare_kernel):
    kernel = connect_existing(bare_registry).default_kernel()
    kernel.run("x = 1", raise_on_error=True)
    with pytest.raises(KernelDied, match="died during the request"):
        kernel.run("import os\nos._exit(1)")
    with pytest.raises(KernelDied, match="No kernel answers"):
        connect_existing(bare_registry, bare_kernel.kernel_id, name="again")


@pytest.fixture
def own_runtime_dir(tmp_path, monkeypatch):
    """A runtime directory of this test's own: other tests' kernels leave files in the shared one."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    (tmp_path / "runtime").mkdir()


def test_local_listing_and_pruning_keep_the_live_kernel(own_runtime_dir, shell, bare_kernel, capsys):
    stale = stale_connection_file("stale-0001")
    found = {k.file.kernel_id: k for k in local_kernels()}
    assert found["stale-0001"].stale and not found["stale-0001"].answers
    live = found[bare_kernel.kernel_id]
    assert live.answers and live.process.pid == bare_kernel.pid and not live.stale

    table = shell.run_line_magic("remote", "kernels --local")
    rows = {row["kernel_id"]: row for row in table}
    assert rows[bare_kernel.kernel_id]["answers"] == "yes" and rows[bare_kernel.kernel_id]["pid"] == bare_kernel.pid
    assert rows["stale-0001"]["answers"] == "no" and rows["stale-0001"]["pid"] is None

    assert prune_connection_files(confirm=lambda stale: False) == [] and os.path.exists(stale)
    os.kill(bare_kernel.pid, signal.SIGSTOP)  # frozen: no heartbeat, but its process is there
    try:
        frozen = next(k for k in local_kernels(timeout=0.3) if k.file.kernel_id == bare_kernel.kernel_id)
        assert not frozen.answers and not frozen.stale
        assert prune_connection_files(timeout=0.3) == [stale]
    finally:
        os.kill(bare_kernel.pid, signal.SIGCONT)
    assert os.path.exists(bare_kernel.path)
    stale = stale_connection_file("stale-0001")
    shell.run_line_magic("remote", "prune-connection-files --yes")
    assert "Removed 1 stale connection file" in capsys.readouterr().out
    assert not os.path.exists(stale)
    assert os.path.exists(bare_kernel.path)
