"""Faults of the link and the kernel: each ends the cell with a named error within a bound, or is
survived, and nothing that arrives is lost or shown in the wrong cell."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import pytest

from remote_magic import ConnectionLost, Server
from remote_magic.launch import LaunchedServer

SLOW_START = 6.0  # seconds a kernel of the "slow" kernelspec takes before it answers


@pytest.fixture(scope="module")
def slow_kernel_server(tmp_path_factory):
    """A Jupyter Server with a kernelspec whose kernel sleeps before it starts answering."""
    data = tmp_path_factory.mktemp("jupyter-data")
    spec = data / "kernels" / "slow"
    spec.mkdir(parents=True)
    command = f"sleep {SLOW_START:g}; exec {sys.executable} -m ipykernel_launcher -f {{connection_file}}"
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": ["sh", "-c", command], "display_name": "Slow", "language": "python"})
    )
    launched = LaunchedServer(env={"JUPYTER_PATH": str(data)})
    yield launched
    launched.stop()


def test_a_kernel_slower_to_start_than_the_connect_timeout_is_waited_for(slow_kernel_server):
    server = Server(slow_kernel_server.url, slow_kernel_server.token)
    try:
        kernel = server.start_kernel("slow")
        channel = kernel.channel
        channel.connect_timeout = SLOW_START / 3  # the server holds the handshake longer than this
        started = time.monotonic()
        result = kernel.run("print('up')", timeout=120)
        assert result.text() == "up\n"
        notices = [o["text"] for o in result.outputs if o.get("name") == "stderr"]
        assert len(notices) == 1 and f"kernel {kernel.id} is still starting" in notices[0]  # said once, in the cell
        assert time.monotonic() - started < 100  # bounded by start_timeout, not by luck
        kernel.shutdown()
    finally:
        server.close()


def test_a_kernel_that_never_answers_ends_with_connection_lost_at_start_timeout(slow_kernel_server):
    server = Server(slow_kernel_server.url, slow_kernel_server.token)
    try:
        kernel = server.start_kernel("slow")
        channel = kernel.channel
        channel.connect_timeout = 1.0
        channel.start_timeout = 2.0  # shorter than the kernel's start: it must give up, and say why
        with pytest.raises(ConnectionLost) as info:
            kernel.run("pass")
        assert "still starting" in str(info.value) and "\n" not in str(info.value)
        kernel.shutdown()
    finally:
        server.close()



def _ctrl_c_after(*delays: float) -> threading.Thread:
    """Press Ctrl-C (SIGINT to the main thread) after each delay, as a user would."""

    def press():
        for delay in delays:
            time.sleep(delay)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    thread = threading.Thread(target=press, daemon=True)
    thread.start()
    return thread


CLEANS_UP_SLOWLY = (
    "import time\n"
    "try:\n"
    "    print('working', flush=True)\n"
    "    time.sleep(60)\n"
    "except KeyboardInterrupt:\n"
    "    time.sleep(1.5)\n"
    "    print('cleaned up', flush=True)\n"
    "    raise\n"
)


def test_late_output_of_an_abandoned_cell_is_marked_late_and_does_not_fail_the_next(kernel):
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for msg in kernel.execute(CLEANS_UP_SLOWLY, on_keyboard_interrupt=kernel.interrupt, timeout=60):
            seen.append(msg)
            if msg["msg_type"] == "stream":
                presser = _ctrl_c_after(0.2, 0.5)  # the second press abandons the cell mid clean-up
    presser.join()
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["working\n"]
    time.sleep(2.5)  # the clean-up output and the remote KeyboardInterrupt arrive meanwhile
    messages = list(kernel.execute("print('next')", timeout=60))
    late = [m for m in messages if m.get("late")]
    own = [m for m in messages if not m.get("late")]
    assert [m["msg_type"] for m in late] == ["stream", "error"]
    assert late[0]["content"]["text"] == "cleaned up\n" and late[1]["content"]["ename"] == "KeyboardInterrupt"
    assert [m["content"]["text"] for m in own if m["msg_type"] == "stream"] == ["next\n"]
    assert [m["content"]["status"] for m in own if m["channel"] == "shell"] == ["ok"]
    result = kernel.run("print('and after')", timeout=60)
    assert result.ok and result.text() == "and after\n"  # nothing of the abandoned cell any more
