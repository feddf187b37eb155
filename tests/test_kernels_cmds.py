"""Kernels and sessions from a real shell: listings, start, attach and re-attach (no leaked kernels),
interrupt, restart, shutdown, and the shared-kernel guard of switch. All against a real server."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import uuid

import pytest
import websocket

import remote_magic
from remote_magic.commands import load_all
from remote_magic.errors import KernelInUse, NotFound, UsageError
from remote_magic.sessions import sessions_using, stable_session_path
from remote_magic.tables import Table

KERNEL_COMMANDS = ["kernelspecs", "kernels", "sessions", "start", "attach", "interrupt", "restart", "shutdown", "switch", "panel"]


def line(shell, text):
    return shell.run_line_magic("remote", text)


def kernel_ids(server) -> set[str]:
    return {k["id"] for k in server.kernels.list()}


def test_every_subcommand_has_help(remote_shell, capsys):
    table = load_all()
    for name in KERNEL_COMMANDS:
        assert line(remote_shell, f"{name} --help") is None
        text = capsys.readouterr().out
        assert text.startswith(f"usage: %remote {name}"), name
        assert table[name].summary.split()[0] in text


def test_listings_show_the_connection_session_and_mark_it(remote_shell, capsys):
    assert remote_shell.run_cell("%%remote\nx = 1").success
    connection = remote_magic.registry.get("test")
    mine = connection.kernel.id

    kernels = line(remote_shell, "kernels")
    assert isinstance(kernels, Table)
    row = next(r for r in kernels if r["id"] == mine)
    assert row["current"] and row["started"] and row["name"] == "python3"
    assert row["state"] in ("idle", "busy") and row["last_activity"] and row["connections"] >= 1
    assert row["sessions"] == [connection.session_path]
    assert not any(r["current"] for r in kernels if r["id"] != mine)
    text = repr(kernels)
    assert "CURRENT" in text and mine in text and connection.session_path in text
    assert mine in kernels._repr_html_()

    sessions = line(remote_shell, "sessions")
    session = next(s for s in sessions if s["kernel_id"] == mine)
    assert session["current"] and session["path"] == connection.session_path
    assert session["path"].startswith("remote_magic/") and session["type"] == "notebook"

    specs = line(remote_shell, "kernelspecs")
    python = next(s for s in specs if s["name"] == "python3")
    assert python["current"] and python["default"] and python["language"] == "python"


def test_session_path_is_recognisable_and_stable_per_notebook():
    host = __import__("socket").gethostname().split(".")[0]
    path = stable_session_path("gpu box", "/home/me/My Analysis.ipynb")
    assert path == f"remote_magic/{host}-My-Analysis-gpu-box.ipynb"
    assert stable_session_path("gpu box", "/elsewhere/My Analysis.ipynb") == path
    assert f"ipython-{os.getpid()}" in stable_session_path("gpu", None)


def test_two_live_connections_of_one_process_never_share_a_kernel(jupyter_server, registry, server):
    other = remote_magic.Registry()
    try:
        first = registry.connect(jupyter_server.url, token=jupyter_server.token, name="same")
        second = other.connect(jupyter_server.url, token=jupyter_server.token, name="same")
        assert first.session_path != second.session_path
        assert first.default_kernel().id != second.default_kernel().id
    finally:
        other.clear()


def test_a_connection_wanting_another_kernelspec_leaves_the_session_alone(jupyter_server, registry, server):
    first = registry.connect(jupyter_server.url, token=jupyter_server.token, name="spec")
    kernel = first.default_kernel().id
    other = remote_magic.Registry()
    try:
        second = other.connect(jupyter_server.url, token=jupyter_server.token, name="spec", kernel_name="julia-1.10")
        second.session_path = first.session_path  # as a later process of the same notebook would
        assert second.reattach() is None
        with pytest.raises(UsageError, match="already exists.*python3.*%remote switch SPEC"):
            second.default_kernel()
        assert server.sessions.find(first.session_path)["kernel"]["id"] == kernel
    finally:
        other.clear()


def test_start_with_a_session_makes_it_the_default(remote_shell, server, capsys):
    before = kernel_ids(server)
    line(remote_shell, "start python3 --session work/analysis.ipynb")
    connection = remote_magic.registry.get("test")
    session = server.sessions.find("work/analysis.ipynb")
    assert session is not None and connection.kernel.id == session["kernel"]["id"]
    assert kernel_ids(server) - before == {connection.kernel.id}
    assert connection.kernel.id in connection.started
    assert "Started kernel" in capsys.readouterr().out
    result = remote_shell.run_cell("%%remote\nimport os\nos.environ['JPY_SESSION_NAME']")
    assert result.result.data["text/plain"].strip("'").endswith("analysis.ipynb")

    with pytest.raises(UsageError, match="already exists at work/analysis.ipynb.*%remote attach"):
        line(remote_shell, "start --session work/analysis.ipynb")
    line(remote_shell, "start")  # a plain kernel, no session
    assert not any(s["kernel"]["id"] == connection.kernel.id for s in server.sessions.list())
    assert len(kernel_ids(server) - before) == 2
    remote_magic.registry.remove("test")
    assert not kernel_ids(server) - before, "kernels started by the connection outlived it"


def test_attach_to_a_colleague_session_and_leave_it_running(remote_shell, server, colleague, capsys):
    theirs = colleague("team/shared.ipynb", kernel_name="python3")["kernel"]["id"]
    line(remote_shell, "attach team/shared.ipynb")
    connection = remote_magic.registry.get("test")
    assert connection.kernel.id == theirs and theirs not in connection.started
    assert "Attached kernel" in capsys.readouterr().out
    result = remote_shell.run_cell("%%remote\nimport os\nos.environ['JPY_SESSION_NAME']")
    assert result.result.data["text/plain"].strip("'").endswith("shared.ipynb")
    assert next(r for r in line(remote_shell, "sessions") if r["path"] == "team/shared.ipynb")["current"]

    line(remote_shell, f"attach {theirs[:8]}")  # a unique id prefix
    assert connection.kernel.id == theirs
    line(remote_shell, "disconnect")
    assert theirs in kernel_ids(server), "disconnect stopped a kernel it had only attached to"


def test_attach_errors_are_one_line_and_say_what_to_do(remote_shell):
    with pytest.raises(NotFound) as caught:
        line(remote_shell, "attach no/such/notebook.ipynb")
    assert "%remote kernels" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UsageError):
        line(remote_shell, "attach")
    with pytest.raises(UsageError, match="no kernel yet"):
        line(remote_shell, "interrupt")


REATTACH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from IPython.core.interactiveshell import InteractiveShell
    import remote_magic

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "remote_magic")
    shell.run_line_magic("remote", "connect " + os.environ["RM_TEST_URL"] + " --token-env RM_TEST_TOKEN --name box")
    for cell in sys.argv[1:]:
        if not shell.run_cell(cell).success:
            sys.exit(1)
    connection = remote_magic.registry.get("box")
    print("STATE", connection.kernel.id if connection.kernel else None, sorted(connection.started), connection.session_path)
    sys.stdout.flush()
    if os.environ.get("RM_TEST_EXIT") != "normal":
        os._exit(0)  # like a local kernel that dies or is restarted: nothing is cleaned up
    """
)


def run_local_process(jupyter_server, notebook, *cells, exit="killed"):
    """A new local process (as after a local kernel restart) running ``cells`` for ``notebook``
    (None: a terminal or a script), then ending without clean-up, or with a ``"normal"`` exit."""
    env = {**os.environ, "RM_TEST_URL": jupyter_server.url, "RM_TEST_TOKEN": jupyter_server.token, "RM_TEST_EXIT": exit}
    env.pop("JPY_SESSION_NAME", None)
    if notebook:
        env["JPY_SESSION_NAME"] = notebook
    done = subprocess.run(
        [sys.executable, "-c", REATTACH_SCRIPT, *cells], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert jupyter_server.token not in done.stdout + done.stderr
    _, kernel, state = next(l for l in done.stdout.splitlines() if l.startswith("STATE")).split(" ", 2)
    started, path = state.rsplit(" ", 1)
    return done.stdout, kernel, started, path


def test_a_restarted_local_notebook_reattaches_instead_of_leaking(jupyter_server, server):
    before = kernel_ids(server)
    _, first, started, path = run_local_process(jupyter_server, "/home/me/analysis.ipynb", "%%remote\nx = 41")
    assert kernel_ids(server) == before | {first} and first in started
    assert path.endswith("-analysis-box.ipynb") and server.sessions.find(path)["kernel"]["id"] == first

    out, again, started, _ = run_local_process(jupyter_server, "/home/me/analysis.ipynb", "%%remote\nprint('answer', x + 1)")
    assert again == first and "answer 42" in out, "the remote state did not survive the local restart"
    assert f"re-attached to kernel {first}" in out, "connect did not say it re-attached"
    assert kernel_ids(server) == before | {first}, "a local restart leaked a kernel"
    assert started == "[]", "a re-attached kernel was counted as started here"

    _, other, _, _ = run_local_process(jupyter_server, "/home/me/other.ipynb", "%%remote\nx = 1")
    assert other != first, "another notebook got this notebook's kernel"

    _, after, _, _ = run_local_process(jupyter_server, "/home/me/analysis.ipynb", "%remote shutdown --yes")
    assert after == "None"
    server.kernels.shutdown(other)
    assert kernel_ids(server) == before


def test_at_exit_a_process_stops_the_kernels_it_started_that_nothing_can_reattach(jupyter_server, server, kernel):
    kernel.run("mine = 'theirs'", raise_on_error=True)
    _, attached, started, path = run_local_process(
        jupyter_server, None, "%%remote\nx = 1", f"%remote attach {kernel.id}", "%%remote\nmine += '!'", exit="normal"
    )
    [terminal] = ast.literal_eval(started)
    assert attached == kernel.id and "-ipython-" in path
    assert terminal not in kernel_ids(server), "a kernel nothing can re-attach outlived the script"
    assert kernel.run("mine").result == {"text/plain": "'theirs!'"}, "an attached kernel was stopped"

    _, loose, started, path = run_local_process(
        jupyter_server, "/home/me/kept.ipynb", "%%remote\nx = 1", "%remote start", exit="normal"
    )
    session = server.sessions.find(path)
    assert session is not None and session["kernel"]["id"] in ast.literal_eval(started), "a notebook's kernel was stopped at exit"
    assert loose in ast.literal_eval(started) and loose not in kernel_ids(server), "a kernel in no session outlived the process"
    server.kernels.shutdown(session["kernel"]["id"])


def test_disconnect_names_the_kernels_it_leaves_running(remote_shell, server, kernel, capsys):
    line(remote_shell, f"attach {kernel.id}")
    line(remote_shell, "start")
    mine = remote_magic.registry.get("test").kernel.id
    capsys.readouterr()
    line(remote_shell, "disconnect --keep-kernels")
    out = capsys.readouterr().out
    assert f"Left running: kernel {kernel.id} (attached, not started here)." in out
    assert f"Left running: kernel {mine} (started here, kept as asked)." in out
    assert {kernel.id, mine} <= kernel_ids(server)
    server.kernels.shutdown(mine)


def test_interrupt_and_restart(remote_shell, server, make_busy, wait_until, capsys):
    assert remote_shell.run_cell("%%remote\nkept = 'yes'").success
    connection = remote_magic.registry.get("test")
    busy = make_busy(connection.kernel)
    line(remote_shell, "interrupt")
    busy.join(60)
    assert busy.outcome.error().ename == "KeyboardInterrupt"
    assert "Interrupted kernel" in capsys.readouterr().out
    assert remote_shell.run_cell("%%remote\nkept").result.data["text/plain"] == "'yes'"

    line(remote_shell, f"restart {connection.kernel.id}")
    wait_until(lambda: connection.kernel.model()["execution_state"] == "idle", message="the restarted kernel")
    lost = remote_shell.run_cell("%%remote\nkept")
    assert type(lost.error_in_exec).__name__ == "NameError"


def test_shutdown_asks_and_clears_the_default(remote_shell, server, monkeypatch, capsys):
    assert remote_shell.run_cell("%%remote\n1").success
    connection = remote_magic.registry.get("test")
    first = connection.kernel.id
    with pytest.raises(UsageError, match="--yes"):
        line(remote_shell, "shutdown")  # nobody can answer here
    monkeypatch.setattr("builtins.input", lambda question: "n")
    line(remote_shell, "shutdown")
    assert "Not shut down" in capsys.readouterr().out and first in kernel_ids(server)
    monkeypatch.setattr("builtins.input", lambda question: "yes")
    line(remote_shell, "shutdown")
    assert first not in kernel_ids(server) and connection.kernel is None and first not in connection.started
    assert remote_shell.run_cell("%%remote\n2").success
    assert connection.kernel.id != first, "the next cell should get a new kernel"


def test_switch_refuses_while_another_session_shares_the_kernel(remote_shell, server, colleague, capsys):
    assert remote_shell.run_cell("%%remote\nx = 1").success
    connection = remote_magic.registry.get("test")
    old = connection.kernel.id
    colleague("team/uses-the-same-kernel.ipynb", kernel_id=old)

    with pytest.raises(KernelInUse) as caught:
        line(remote_shell, "switch python3")
    message = str(caught.value)
    assert "team/uses-the-same-kernel.ipynb" in message and "--force" in message and "\n" not in message
    assert old in kernel_ids(server) and connection.kernel.id == old
    assert server.sessions.find("team/uses-the-same-kernel.ipynb")["kernel"]["id"] == old

    line(remote_shell, "switch python3 --force")
    new = connection.kernel.id
    assert new != old and old not in kernel_ids(server), "the server did not stop the old kernel"
    assert server.sessions.find("team/uses-the-same-kernel.ipynb") is None, "the colleague's session lost its kernel"
    assert server.sessions.find(connection.session_path)["kernel"]["id"] == new
    assert new in connection.started and old not in connection.started
    assert remote_shell.run_cell("%%remote\n'x' in dir()").result.data["text/plain"] == "False"


def test_switch_an_unshared_session_and_one_without_a_session(remote_shell, server):
    assert remote_shell.run_cell("%%remote\n1").success
    connection = remote_magic.registry.get("test")
    old = connection.kernel.id
    line(remote_shell, "switch python3")
    assert connection.kernel.id != old and old not in kernel_ids(server)
    line(remote_shell, "start")
    with pytest.raises(UsageError, match="no session"):
        line(remote_shell, "switch python3")


def test_switch_refuses_while_another_websocket_client_uses_the_kernel(remote_shell, server, jupyter_server, wait_until):
    """A client with no session of its own (a second frontend's websocket) still counts."""
    assert remote_shell.run_cell("%%remote\nx = 1").success
    connection = remote_magic.registry.get("test")
    old = connection.kernel.id
    assert [s["path"] for s in sessions_using(server, old)] == [connection.session_path]
    url = server.url.websocket("kernels", old, "channels", query={"session_id": uuid.uuid4().hex})
    other = websocket.create_connection(url, header=[f"Authorization: token {jupyter_server.token}"], timeout=30)
    try:
        wait_until(lambda: server.kernels.get(old)["connections"] == 2, message="the second client to count")
        with pytest.raises(KernelInUse, match="also used by 1 other client;.*--force"):
            line(remote_shell, "switch python3")
        assert old in kernel_ids(server) and connection.kernel.id == old
        assert remote_shell.run_cell("%%remote\nx").result.data["text/plain"] == "1"
    finally:
        other.close()
    wait_until(lambda: server.kernels.get(old)["connections"] == 1, message="the second client to leave")
    line(remote_shell, "switch python3")
    assert connection.kernel.id != old and old not in kernel_ids(server)


def test_listed_state_is_what_the_kernel_says_on_this_processs_websocket(server, kernel, make_busy, wait_until, monkeypatch):
    """A kernel this process has a websocket to is listed in the state its status messages tell,
    also when the server's model says otherwise, and a control request answered during a long cell
    (busy, then idle, within the cell) leaves it busy."""
    from remote_magic import sessions

    busy = make_busy(kernel)
    kernel.channel.request("kernel_info_request", {}, channel="control", wait_idle=True)
    real = server.kernels.list
    monkeypatch.setattr(server.kernels, "list", lambda: [dict(k, execution_state="starting") for k in real()])
    connection = remote_magic.Connection("observed", server)
    rows = {row["id"]: row for row in sessions.overview(connection).kernels}
    assert rows[kernel.id]["state"] == "busy"
    kernel.interrupt()
    busy.join(30)

    def listed_state():
        return {row["id"]: row for row in sessions.overview(connection).kernels}[kernel.id]["state"]

    # The cell's last status messages are read when they come (a probe's idle may follow its reply).
    wait_until(lambda: listed_state() == "idle", timeout=10, message="the kernel to be listed idle")
