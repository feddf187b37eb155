"""``%remote launch``: a private local server that stops on disconnect or at exit, leaving no process behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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


def test_launched_server_stops_when_the_python_process_exits(tmp_path):
    script = textwrap.dedent(
        """
        import os, remote_magic
        from remote_magic.launch import launched_server
        connection = remote_magic.launch_local(root_dir=os.getcwd())
        assert connection.run("1 + 1").result["text/plain"] == "2"
        server = launched_server(connection)
        kernels = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(server.pid)]
        print(server.pid, *kernels)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) >= 2, "a server and its kernel"
    assert gone(pids)


def test_launched_server_stops_when_its_launcher_is_killed(tmp_path):
    """A local kernel that dies without running atexit (killed, crashed) still leaves no server behind."""
    script = textwrap.dedent(
        """
        import os, time, remote_magic
        from remote_magic.launch import launched_server
        connection = remote_magic.launch_local(root_dir=os.getcwd())
        connection.run("1")
        server = launched_server(connection)
        kernels = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(server.pid)]
        print(server.pid, *kernels, flush=True)
        time.sleep(600)
        """
    )
    launcher = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in launcher.stdout.readline().split()]
    finally:
        launcher.kill()
        launcher.wait()
    assert len(pids) >= 2, "a server and its kernel"
    assert gone(pids)


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
