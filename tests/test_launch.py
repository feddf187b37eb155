"""``%remote launch``: a private local server that stops on disconnect or at exit, leaving no process behind."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

import remote_magic
from remote_magic.errors import UsageError
from remote_magic.launch import LaunchError, launched_server


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the kernels of a server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def gone(pids: list[int], within: float = 30.0) -> bool:
    """Wait (at most ``within`` seconds) until none of ``pids`` is alive."""
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(alive(pid) for pid in pids)


def test_launch_connects_runs_and_disconnect_stops_server_and_kernels(shell, tmp_path, capsys):
    (tmp_path / "hello.txt").write_text("served")
    shell.run_line_magic("remote", f"launch --name mine --root {tmp_path}")
    out = capsys.readouterr().out
    connection = remote_magic.registry.get("mine")
    server = launched_server(connection)
    assert server is not None and server.url.startswith("http://127.0.0.1:")
    assert f"Launched a private Jupyter Server (pid {server.pid}, root {tmp_path})" in out
    assert f"Connected 'mine': {server.url}" in out and server.token not in out
    assert remote_magic.registry.current is connection
    assert [row["name"] for row in shell.run_line_magic("remote", "ls")] == ["hello.txt"]
    result = shell.run_cell("%%remote\nopen('hello.txt').read()")
    assert result.result.data["text/plain"] == "'served'"
    kernels = children(server.pid)
    assert kernels, "the cell ran on a kernel the server started"
    assert [row["connection"] for row in shell.run_line_magic("remote", "servers") if row["pid"] == server.pid] == ["mine"]
    shell.run_line_magic("remote", "disconnect mine")
    assert not server.running
    assert gone([server.pid, *kernels])
    assert "mine" not in remote_magic.registry


def start_launcher(tmp_path, script: str) -> tuple[subprocess.Popen, queue.Queue]:
    """A Python process that launches a server (in a process group of its own, as a local kernel
    is), and a queue of the lines it prints (None at its end)."""
    launcher = subprocess.Popen(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(script)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for text in launcher.stdout:
            lines.put(text.strip())
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return launcher, lines


def next_line(lines: queue.Queue) -> str:
    line = lines.get(timeout=120)
    assert line is not None, "the launcher ended early"
    return line


PREAMBLE = textwrap.dedent(
    """
    import os, sys, remote_magic
    from remote_magic.launch import launched_server

    def launch():
        connection = remote_magic.launch_local(root_dir=os.getcwd())
        connection.run("x = 41", raise_on_error=True)
        server = launched_server(connection)
        kernels = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(server.pid)]
        print("READY", server.url, server.pid, *kernels, flush=True)
        return connection, server
    """
)


def ready(lines: queue.Queue) -> tuple[str, list[int]]:
    """The launched server's URL, and the pids of it and its kernel."""
    words = next_line(lines).split()
    assert words[0] == "READY" and len(words) >= 4, "a server and its kernel"
    return words[1], [int(pid) for pid in words[2:]]


def test_launched_server_survives_an_interrupt_of_the_launchers_process_group(tmp_path):
    """JupyterLab's Stop button and a terminal's Ctrl-C signal the local kernel's whole process group."""
    launcher, lines = start_launcher(
        tmp_path,
        """
        import signal
        signal.signal(signal.SIGINT, lambda *_: print("SIGINT", flush=True))  # as ipykernel: interrupt, not exit
        connection, server = launch()
        for code in sys.stdin:
            print("ANSWER", connection.run(code, timeout=60).result["text/plain"], flush=True)
        """,
    )
    try:
        url, pids = ready(lines)
        os.killpg(launcher.pid, signal.SIGINT)
        assert next_line(lines) == "SIGINT"
        launcher.stdin.write("x + 1\n")
        launcher.stdin.flush()
        assert next_line(lines) == "ANSWER 42", "the remote state was lost"
        assert requests.get(url + "api", timeout=30).ok
        assert all(alive(pid) for pid in pids)
    finally:
        launcher.kill()
        launcher.wait()
    assert gone(pids), "the server outlived its killed launcher"


def test_launched_server_stops_at_exit_before_the_launcher_is_gone(tmp_path):
    """atexit stops the server: it is stopped while the launcher still runs its last exit handler."""
    launcher, lines = start_launcher(
        tmp_path,
        """
        import atexit
        atexit.register(lambda: print("AT EXIT running" if server.running else "AT EXIT stopped", flush=True))
        connection, server = launch()  # its atexit stop runs before the report registered above
        """,
    )
    try:
        _, pids = ready(lines)
        assert next_line(lines) == "AT EXIT stopped"
        assert launcher.wait(60) == 0
    finally:
        launcher.kill()
    assert gone(pids)


def test_launched_server_stops_when_its_launcher_is_killed(tmp_path):
    """A local kernel that dies without running atexit (killed, crashed) still leaves no server behind."""
    launcher, lines = start_launcher(tmp_path, "launch(); sys.stdin.read()")
    try:
        _, pids = ready(lines)
    finally:
        launcher.kill()
        launcher.wait()
    assert gone(pids), "the server outlived its killed launcher"


def test_launch_replacing_a_name_stops_the_old_server(shell, capsys):
    first = launched_server(remote_magic.launch_local(name="again"))
    second = launched_server(remote_magic.launch_local(name="again"))
    assert first is not None and second is not None
    assert not first.running and gone([first.pid])
    assert second.running and len(remote_magic.registry) == 1


def test_shutdown_server_asks_then_stops_it(shell, capsys):
    shell.run_line_magic("remote", "launch --name doomed")
    server = launched_server(remote_magic.registry.get("doomed"))
    with pytest.raises(UsageError, match="add --yes"):
        shell.run_line_magic("remote", "shutdown-server")
    assert server.running and "doomed" in remote_magic.registry
    shell.run_line_magic("remote", "shutdown-server --yes")
    assert "connection 'doomed' removed" in capsys.readouterr().out
    assert gone([server.pid])
    assert "doomed" not in remote_magic.registry


def test_launch_errors_are_one_line_and_say_what_to_do(shell, tmp_path, monkeypatch):
    with pytest.raises(LaunchError, match="No local directory .* --root"):
        shell.run_line_magic("remote", f"launch --root {tmp_path / 'missing'}")
    monkeypatch.setitem(sys.modules, "jupyter_server", None)  # as if it were not installed
    with pytest.raises(LaunchError) as info:
        shell.run_line_magic("remote", "launch")
    assert str(info.value) == "Launching a local server needs jupyter_server here: pip install 'remote_magic[launch]'."
    assert len(remote_magic.registry) == 0


@pytest.mark.parametrize("name", ["servers", "launch", "shutdown-server", "connect"])
def test_server_subcommands_have_help(shell, capsys, name):
    shell.run_line_magic("remote", f"{name} --help")
    assert capsys.readouterr().out.startswith(f"usage: %remote {name}")


def test_a_failed_connect_stops_the_fresh_server_at_once(shell):
    before = {info.pid for info in remote_magic.running_servers()}
    with pytest.raises(TypeError, match="colour"):
        remote_magic.launch_local(name="bad", colour="blue")
    assert {info.pid for info in remote_magic.running_servers()} == before
    assert "bad" not in remote_magic.registry
