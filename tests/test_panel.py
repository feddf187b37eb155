"""The panel without a browser: its model against a real server, and its widgets driven by clicks."""

from __future__ import annotations

import threading

import ipywidgets as widgets
import pytest

from remote_magic import Registry
from remote_magic.launch import LaunchedServer
from remote_magic.panel import Panel, show_panel
from remote_magic.panel_model import PanelModel


@pytest.fixture
def connection(jupyter_server, registry):
    return registry.connect(jupyter_server.url, token=jupyter_server.token, name="main")


@pytest.fixture
def make_panel(registry):
    """``make_panel(interval)``: a panel over ``registry``, closed afterwards."""
    made = []

    def make(interval: float) -> Panel:
        made.append(Panel(registry, interval=interval))
        return made[-1]

    yield make
    for view in made:
        view.close()


@pytest.fixture
def panel(make_panel):
    """A panel refreshing twice a second."""
    return make_panel(0.5)


def kernel_ids(server) -> set[str]:
    return {k["id"] for k in server.kernels.list()}


def row_of(rows, key, value):
    return next((row for row in rows if row[key] == value), None)


def button(row, description) -> widgets.Button:
    return next(b for b in row.box.children if isinstance(b, widgets.Button) and b.description == description)


def state_of(row) -> str:
    return next(cell for cell in row.cells if "rm-state" in cell._dom_classes).value


# ---------------------------------------------------------------------------- the model


def test_model_lists_sessions_kernels_and_kernelspecs(registry, connection, server, colleague, kernel):
    mine = connection.default_kernel().id
    theirs = colleague("team/report.ipynb", kernel_name="python3")["kernel"]["id"]
    model = PanelModel(registry)
    model.refresh()
    assert model.connections == ["main"] and model.current == "main"
    assert not model.error and not model.refresh_error
    assert "python3" in model.kernelspecs and model.default_spec == "python3"

    assert row_of(model.sessions, "path", connection.session_path)["current"]
    report = row_of(model.sessions, "path", "team/report.ipynb")
    assert report["kernel_id"] == theirs and not report["current"] and report["state"]
    assert {mine, theirs, kernel.id} <= {row["id"] for row in model.kernels}
    assert row_of(model.kernels, "id", mine)["current"] and row_of(model.kernels, "id", mine)["started"]
    assert row_of(model.kernels, "id", kernel.id)["sessions"] == []
    assert not row_of(model.kernels, "id", theirs)["started"]


def test_model_actions_change_the_rows(registry, connection, server, colleague, make_busy, wait_until):
    mine = connection.default_kernel()
    colleague("team/report.ipynb", kernel_name="python3")
    model = PanelModel(registry)

    assert model.attach("team/report.ipynb")
    assert row_of(model.sessions, "path", "team/report.ipynb")["current"]
    assert not row_of(model.kernels, "id", mine.id)["current"]

    busy = make_busy(mine)
    model.refresh()
    assert row_of(model.kernels, "id", mine.id)["state"] == "busy"
    assert model.interrupt(mine.id) and "Interrupted" in model.message
    busy.join(60)
    assert busy.outcome.error().ename == "KeyboardInterrupt"
    wait_until(lambda: model.refresh() or row_of(model.kernels, "id", mine.id)["state"] == "idle", message="idle")

    assert model.restart(mine.id) and "Restarted" in model.message

    assert model.start("python3")
    started = connection.kernel.id
    assert row_of(model.kernels, "id", started)["current"] and started in connection.started
    assert model.shutdown(started)
    assert row_of(model.kernels, "id", started) is None and started not in kernel_ids(server)
    assert connection.kernel is None


def test_model_errors_stay_in_the_model(registry, connection):
    model = PanelModel(registry)
    assert not model.interrupt("no-such-kernel")
    assert "No kernel or session 'no-such-kernel'" in model.error and "Traceback" not in model.error
    assert model.use_connection("main") and not model.error


def test_model_adds_switches_and_removes_connections(jupyter_server, registry, connection, server):
    model = PanelModel(registry)
    assert not model.add_connection(jupyter_server.url, "wrong-token")
    assert "token" in model.error and "wrong-token" not in model.error
    assert model.add_connection(jupyter_server.url, jupyter_server.token)
    added = model.current
    assert added != "main" and model.connections == ["main", added]
    assert jupyter_server.token not in model.message
    kernel = registry.get(added).default_kernel().id
    assert model.use_connection("main") and model.current == "main"
    assert model.remove_connection(added) and model.connections == ["main"]
    assert kernel not in kernel_ids(server), "removing the connection left the kernel it started"


def test_model_shows_a_server_that_went_away(registry):
    gone = LaunchedServer()
    try:
        registry.connect(gone.url, token=gone.token, name="gone")
    finally:
        gone.stop()
    model = PanelModel(registry)
    model.refresh()
    assert "Cannot reach" in model.refresh_error and model.kernels == [] and model.current == "gone"
    assert gone.token not in model.refresh_error


# ---------------------------------------------------------------------------- the widgets


def test_buttons_act_on_their_row_and_the_rows_follow(registry, connection, server, panel, make_busy, wait_until):
    mine = connection.default_kernel()
    busy = make_busy(mine)
    panel.submit("Refreshing", panel.model.refresh)
    row = wait_until(lambda: panel._rows["kernel"].get(mine.id), message="the kernel's row")
    wait_until(lambda: "busy" in state_of(row), message="the row to show busy")
    assert "rm-kernel-" + mine.id in row.box._dom_classes
    assert "&#9679;" in row.cells[0].value  # the current connection's kernel is marked

    button(row, "interrupt").click()
    wait_until(lambda: "idle" in state_of(row), message="the row to show idle after interrupt")
    busy.join(60)
    assert busy.outcome.error().ename == "KeyboardInterrupt"

    button(row, "shut down").click()
    assert panel._confirm.layout.display == "flex" and mine.id[:8] in panel._question.value
    assert mine.id in kernel_ids(server), "shut down without confirmation"
    panel._confirm_button.click()
    wait_until(lambda: mine.id not in panel._rows["kernel"], message="the row to go")
    assert mine.id not in kernel_ids(server) and connection.kernel is None
    assert panel._confirm.layout.display == "none"

    start = next(b for b in panel.children[-1].children if isinstance(b, widgets.Button))
    assert panel._spec.value == "python3"
    start.click()
    assert panel._confirm.layout.display == "flex" and "%%remote cells of &#x27;main&#x27; then run there" in panel._question.value
    assert connection.kernel is None, "a kernel was started without asking"
    panel._confirm_button.click()
    new = wait_until(lambda: connection.kernel and connection.kernel.id, message="a started kernel")
    row = wait_until(lambda: panel._rows["kernel"].get(new), message="the started kernel's row")
    assert "&#9679;" in row.cells[0].value
    notice = wait_until(lambda: new[:8] in panel._where.value and panel._where.value, message="the notice")
    assert "a new kernel started from this panel" in notice and "#ef6c00" in notice
    panel.submit("Refreshing", panel.model.refresh)  # the notice lasts beyond the action's message
    wait_until(lambda: panel._jobs.empty() and "Refreshing" not in panel._status.value, message="a refresh")
    assert "a new kernel started from this panel" in panel._where.value


def test_a_long_session_path_is_shown_whole(registry, connection, colleague, panel, wait_until):
    path = "projects/2024/a-rather-long-directory-name/with-a-deeper-folder/and-a-notebook-named-at-length.ipynb"
    colleague(path, kernel_name="python3")
    panel.submit("Refreshing", panel.model.refresh)
    row = wait_until(lambda: next((r for r in panel._rows["session"].values() if r.data["path"] == path), None), message="the row")
    cell = row.cells[[key for _, key, _ in row.columns].index("path")].value
    assert f">{path}</span>" in cell and f"title='{path}'" in cell
    assert "text-overflow:ellipsis" not in cell and "overflow-wrap:anywhere" in cell


def test_session_row_use_attaches_that_session(registry, connection, colleague, panel, wait_until):
    connection.default_kernel()
    session = colleague("team/report.ipynb", kernel_name="python3")
    panel.submit("Refreshing", panel.model.refresh)
    row = wait_until(lambda: panel._rows["session"].get(session["id"]), message="the session's row")
    button(row, "use").click()
    wait_until(lambda: connection.kernel.id == session["kernel"]["id"], message="the attach")
    wait_until(lambda: "&#9679;" in row.cells[0].value, message="the session to be marked current")


def test_errors_show_in_the_panel_not_as_tracebacks(registry, connection, server, make_panel, wait_until):
    panel = make_panel(600)  # refreshes only when asked: the row below stays stale
    stray = server.start_kernel()
    panel.submit("Refreshing", panel.model.refresh)
    row = wait_until(lambda: panel._rows["kernel"].get(stray.id), message="the kernel's row")
    stray.shutdown()  # behind the panel's back: its row is stale until the next refresh
    button(row, "interrupt").click()
    status = wait_until(lambda: "rm-error" in panel._status.value and panel._status.value, message="the error")
    assert "No kernel or session" in status and "Traceback" not in status
    assert panel.running


def test_actions_run_off_the_notebook_thread(registry, connection, make_panel, wait_until):
    panel = make_panel(600)
    gate = threading.Event()
    panel.submit("Waiting for the gate", gate.wait)
    assert not gate.is_set()  # submit returned while the action still waits
    assert "Waiting for the gate" in panel._status.value
    gate.set()
    wait_until(lambda: "Connected to &#x27;main&#x27;" in panel._status.value, message="the redraw after the action")


def test_connection_controls(jupyter_server, registry, connection, panel, wait_until):
    panel._url.value, panel._token.value = jupyter_server.url, jupyter_server.token
    add = next(b for b in panel.children[4].children if isinstance(b, widgets.Button))
    add.click()
    assert panel._token.value == "" and panel._url.value == "", "the token stayed in the widget"
    wait_until(lambda: len(registry) == 2 and len(panel._connection.options) == 2, message="the new connection")
    added = registry.current.name
    wait_until(lambda: panel._connection.value == added, message="the dropdown to follow")
    panel._connection.value = "main"
    wait_until(lambda: registry.current.name == "main", message="the switch")
    panel._connection.value = added
    wait_until(lambda: registry.current.name == added, message="the switch back")
    remove = next(b for b in panel.children[3].children if isinstance(b, widgets.Button))
    remove.click()
    panel._confirm_button.click()
    wait_until(lambda: added not in registry and panel._connection.options == ("main",), message="the removal")


def test_refreshing_stops_when_the_panel_is_closed(registry, connection, wait_until):
    panel = Panel(registry, interval=0.05)
    wait_until(lambda: panel.model.current == "main", message="the first refresh")
    assert panel.running
    panel.close()
    panel._thread.join(30)
    assert not panel.running and panel.comm is None

    panel = Panel(registry, interval=0.05)
    close = next(b for b in panel.children[0].children if isinstance(b, widgets.Button) and b.description == "close")
    close.click()
    panel._thread.join(30)
    assert not panel.running and "closed" in panel.children[0].value


def test_a_new_panel_replaces_the_old_one(registry, connection):
    first = show_panel(registry, interval=600)
    second = show_panel(registry, interval=600)
    try:
        first._thread.join(30)
        assert not first.running and second.running
    finally:
        second.close()
        first.close()


def test_panel_command_returns_a_live_panel(remote_shell, monkeypatch):
    import remote_magic

    monkeypatch.setattr("remote_magic.frontend.in_notebook", lambda: True)
    shown = remote_shell.run_line_magic("remote", "panel --interval 600")
    try:
        assert isinstance(shown, Panel) and shown.model.registry is remote_magic.registry and shown.running
    finally:
        shown.close()
    with pytest.raises(Exception, match="positive"):
        remote_shell.run_line_magic("remote", "panel --interval 0")


def test_outside_a_notebook_the_panel_command_shows_the_panel_as_text(remote_shell, server):
    remote_shell.run_cell("%%remote\nx = 1")
    shown = remote_shell.run_line_magic("remote", "panel")
    kernel = remote_magic_registry().get().kernel
    text = str(shown)
    assert text.startswith("remote_magic panel as text: the live panel with buttons needs a notebook.")
    assert "Connections: test (current)" in text
    assert f"%%remote cells of 'test' run on kernel {kernel.id[:8]} (python3)." in text
    assert f"Kernels on {server.url}" in text and kernel.id in text
    assert "Sessions on" in text


def remote_magic_registry():
    import remote_magic

    return remote_magic.registry


def test_an_empty_registry_says_what_to_do(wait_until):
    panel = Panel(Registry(), interval=600)
    try:
        wait_until(lambda: "add a server URL" in panel._status.value, message="the hint")
    finally:
        panel.close()
