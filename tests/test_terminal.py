"""Terminal IPython, driven as a user drives it: in a tmux session, reading the screen. The panel
shows as text, a transfer's progress is one line that ends as its summary, and after Ctrl-C the
remote traceback starts on a line of its own under its header."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from servers import missing

MIB = 1024 * 1024


class Terminal:
    """An IPython in a private tmux server (its own socket): type lines, read the screen."""

    def __init__(self, socket: str, wait_until, env: dict[str, str], cwd: str):
        self.socket = socket
        self.wait_until = wait_until
        command = [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "--no-confirm-exit"]
        subprocess.run(
            ["tmux", "-S", socket, "new-session", "-d", "-s", "rm", "-x", "150", "-y", "60", *command],
            env=env, cwd=cwd, check=True, timeout=30,
        )
        self.wait_for("In [1]:")

    def screen(self) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, "capture-pane", "-p", "-J", "-S", "-", "-t", "rm"],
                              capture_output=True, text=True, timeout=30)
        return done.stdout

    def type(self, line: str) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", "-t", "rm", "-l", line], check=True, timeout=30)
        subprocess.run(["tmux", "-S", self.socket, "send-keys", "-t", "rm", "Enter"], check=True, timeout=30)

    def ctrl_c(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", "-t", "rm", "C-c"], check=True, timeout=30)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        return self.wait_until(lambda: text in self.screen() and self.screen(), timeout=timeout, message=repr(text))

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def terminal(jupyter_server, wait_until, tmp_path):
    if shutil.which("tmux") is None:
        missing("tmux is not installed: run `make tmux` (apt-get install tmux) for the terminal tests.")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(RM_TEST_TOKEN=jupyter_server.token, TERM="xterm-256color", COLUMNS="150",
               PYTHONPATH=os.pathsep.join(filter(None, [str(os.path.dirname(os.path.dirname(__file__))), env.get("PYTHONPATH")])))
    term = Terminal(str(tmp_path / "tmux.sock"), wait_until, env, str(tmp_path))
    term.type("%load_ext remote_magic")
    term.type(f"%remote connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name term")
    term.wait_for("Connected 'term'")
    yield term
    term.type("%remote disconnect term")
    term.wait_for("Disconnected 'term'")
    term.close()


def test_the_panel_shows_as_text_in_a_terminal(terminal, jupyter_server):
    terminal.type("get_ipython().run_cell_magic('remote', '', 'x = 1')")
    terminal.type("%remote panel")
    screen = terminal.wait_for("Kernels on")
    assert "remote_magic panel as text: the live panel with buttons needs a notebook." in screen
    assert "Connections: term (current)" in screen and "%%remote cells of 'term' run on kernel " in screen
    assert "Panel(" not in screen and "VBox(" not in screen, "a widget's repr was printed"
    assert jupyter_server.token not in screen


def test_an_upload_shows_one_progress_line_that_ends_as_its_summary(terminal, tmp_path):
    (tmp_path / "big.bin").write_bytes(os.urandom(6 * MIB))
    terminal.type("%remote upload big.bin --force")
    screen = terminal.wait_for("Uploaded big.bin")
    lines = screen.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("Uploading big.bin: done, 6.0 MB in "))
    assert lines[summary + 1].startswith("Uploaded big.bin (6.0 MB, 6 chunks) to big.bin")
    assert not any("%" in line and "|" in line for line in lines), "a progress frame was left on the screen"


def test_after_ctrl_c_the_remote_traceback_starts_on_its_own_line(terminal, wait_until, jupyter_server):
    terminal.type("get_ipython().run_cell_magic('remote', '', \"print('ready' + 'now', flush=True)\\nimport time\\ntime.sleep(120)\")")
    terminal.wait_for("\nreadynow")  # the remote output, not the typed line
    terminal.ctrl_c()
    screen = terminal.wait_for("In [4]:", timeout=60)  # the prompt after the interrupted cell
    lines = screen.splitlines()
    header = next(i for i, line in enumerate(lines) if "Remote error on kernel " in line)
    assert lines[header].startswith("Remote error on kernel "), f"the traceback did not start on a new line: {lines[header]!r}"
    assert "of connection 'term' (its Cell In[n] numbers are that kernel's):" in lines[header]
    assert lines[header - 1].strip() in ("^C", "")
    assert any("time.sleep(120)" in line for line in lines[header:]), "the remote frames are missing"
