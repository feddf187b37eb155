"""``%remote panel``: connections, sessions and kernels with live state and buttons.

:class:`~remote_magic.panel_model.PanelModel` holds what the panel shows and does what its buttons ask, with no widget in
sight. :class:`Panel` is the view: plain ipywidgets (no custom JavaScript, so it works in
JupyterLab, Notebook 7 and VS Code). One background thread per panel does all the talking to the
server, so neither a refresh nor a slow restart ever blocks the notebook; it stops when the panel
is closed.
"""

from __future__ import annotations

import html
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from .panel_model import PanelModel, one_line
from .registry import Registry
from .sessions import Row
from .tables import short_time

_SESSION_COLUMNS = [
    ("", "current", "1.5em"),
    ("session path", "path", "19em"),
    ("kernel", "kernel_name", "6em"),
    ("state", "state", "5.5em"),
    ("last activity", "last_activity", "11.5em"),
    ("conns", "connections", "3.5em"),
]
_KERNEL_COLUMNS = [
    ("", "current", "1.5em"),
    ("kernel id", "id", "6em"),
    ("kernelspec", "name", "7em"),
    ("state", "state", "5.5em"),
    ("last activity", "last_activity", "11.5em"),
    ("conns", "connections", "3.5em"),
    ("sessions", "sessions", "13em"),
]
_STATE_COLORS = {"idle": "#2e7d32", "busy": "#ef6c00", "starting": "#1565c0", "restarting": "#1565c0", "dead": "#c62828"}


def _cell(key: str, value: Any) -> str:
    """The HTML of one cell: on one line, but a path is shown whole, wrapped where it must be."""
    if key in ("path", "sessions"):
        return f"<div style='white-space:normal;overflow-wrap:anywhere;line-height:1.3'>{_content(key, value)}</div>"
    return f"<div style='white-space:nowrap;overflow:hidden;text-overflow:ellipsis'>{_content(key, value)}</div>"


def _content(key: str, value: Any) -> str:
    if key == "current":
        return "<b title='this connection runs cells here'>&#9679;</b>" if value else ""
    if key == "state":
        color = _STATE_COLORS.get(str(value), "inherit")
        return f"<b style='color:{color}'>{html.escape(str(value or '?'))}</b>"
    if key == "last_activity":
        return html.escape(short_time(value))
    if key == "id":
        return f"<code title='{html.escape(value)}'>{html.escape(value[:8])}</code>"
    if key == "sessions":
        return f"<span title='{html.escape(', '.join(value))}'>{html.escape(', '.join(value))}</span>" if value else "<i>none</i>"
    text = html.escape("" if value is None else str(value))
    return f"<span title='{text}'>{text}</span>"


def _button(description: str, on_click: Callable[[], None], *, style: str = "", tooltip: str = "") -> widgets.Button:
    button = widgets.Button(description=description, button_style=style, tooltip=tooltip or description,
                            layout=widgets.Layout(width="auto"))
    button.on_click(lambda _: on_click())
    return button


def _close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class _Row:
    """One line of a listing: text cells and the buttons of one session or kernel."""

    def __init__(self, panel: Panel, kind: str, data: Row):
        self.panel = panel
        self.kind = kind
        self.data = data
        self.columns = _SESSION_COLUMNS if kind == "session" else _KERNEL_COLUMNS
        self.cells = [widgets.HTML(layout=widgets.Layout(width=width, overflow="hidden")) for _, _, width in self.columns]
        self.cells[[key for _, key, _ in self.columns].index("state")].add_class("rm-state")
        buttons = [
            _button("use", self._use, tooltip="run this connection's cells on this kernel"),
            _button("interrupt", self._interrupt),
            _button("restart", self._restart, style="warning"),
            _button("shut down", self._ask_shutdown, style="danger"),
        ]
        self.box = widgets.HBox(self.cells + buttons, layout=widgets.Layout(align_items="center"))
        self.box.add_class("rm-row")
        self.box.add_class(f"rm-{kind}-{data['id']}")
        self.update(data)

    def kernel(self) -> str:
        """The id of this row's kernel."""
        return self.data["kernel_id" if self.kind == "session" else "id"]

    def target(self) -> str:
        """What "use" attaches to: the session's path, or the kernel's id."""
        return self.data["path" if self.kind == "session" else "id"]

    def _use(self) -> None:
        target = self.target()
        self.panel.submit(f"Attaching {target}", lambda: self.panel.model.attach(target))

    def _interrupt(self) -> None:
        kernel = self.kernel()
        self.panel.submit(f"Interrupting {kernel[:8]}", lambda: self.panel.model.interrupt(kernel))

    def _restart(self) -> None:
        kernel = self.kernel()
        self.panel.submit(f"Restarting {kernel[:8]}", lambda: self.panel.model.restart(kernel))

    def _ask_shutdown(self) -> None:
        kernel, spec = self.kernel(), self.data.get("kernel_name") or self.data.get("name")
        self.panel.ask(
            f"Shut down kernel {kernel[:8]} ({spec})? Its state is lost.",
            "shut down",
            f"Shutting down {kernel[:8]}",
            lambda: self.panel.model.shutdown(kernel),
        )

    def update(self, data: Row) -> None:
        self.data = data
        for cell, (_, key, _) in zip(self.cells, self.columns):
            value = _cell(key, data.get(key))
            if cell.value != value:
                cell.value = value


def _header(columns: list[tuple[str, str, str]]) -> widgets.HBox:
    return widgets.HBox([widgets.HTML(f"<b>{html.escape(title)}</b>", layout=widgets.Layout(width=width))
                         for title, _, width in columns])


class Panel(widgets.VBox):
    """The live panel. ``interval`` is the refresh period in seconds; :meth:`close` (or its
    "close" button) stops the refreshing."""

    def __init__(self, registry: Registry, *, interval: float = 2.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.model = PanelModel(registry)
        self.interval = interval
        self._jobs: queue.Queue[tuple[str, Callable[[], Any]] | None] = queue.Queue()
        self._stopped = threading.Event()
        self._lock = threading.RLock()
        self._rows: dict[str, dict[str, _Row]] = {"session": {}, "kernel": {}}
        self._shown_connections: tuple[str, ...] = ()
        self._shown_specs: tuple[str, ...] = ()
        self._pending: Callable[[], Any] | None = None
        self._drawing = False  # the worker is setting widget values: not a user's choice

        self._status = widgets.HTML("Loading&hellip;")
        self._status.add_class("rm-status")
        self._where = widgets.HTML()
        self._where.add_class("rm-where")
        self._connection = widgets.Dropdown(description="Connection", options=(), value=None)
        self._connection.observe(self._on_connection_chosen, names="value")
        self._url = widgets.Text(placeholder="http://host:8888/", description="Add URL")
        self._token = widgets.Password(placeholder="token (or JUPYTER_TOKEN)", layout=widgets.Layout(width="14em"))
        self._question = widgets.HTML()
        self._confirm_button = _button("yes", self._confirmed, style="danger")
        self._confirm = widgets.HBox(
            [self._question, self._confirm_button, _button("cancel", self._hide_question)],
            layout=widgets.Layout(display="none", align_items="center"),
        )
        self._confirm.add_class("rm-confirm")
        self._sessions = widgets.VBox([_header(_SESSION_COLUMNS)])
        self._kernels = widgets.VBox([_header(_KERNEL_COLUMNS)])
        self._empty = {kind: widgets.HTML("<i>none</i>") for kind in self._rows}
        self._spec = widgets.Dropdown(description="Kernelspec", options=(), value=None)
        self.children = [
            widgets.HBox([widgets.HTML("<b>remote_magic</b>"), self._status,
                          _button("refresh", lambda: self.submit("Refreshing", self.model.refresh)),
                          _button("close", self.stop, tooltip="stop refreshing and close the panel")],
                         layout=widgets.Layout(align_items="center", justify_content="space-between")),
            self._where,
            self._confirm,
            widgets.HBox([self._connection, _button("remove", self._ask_remove, tooltip="forget this connection")]),
            widgets.HBox([self._url, self._token, _button("add", self._add, tooltip="connect to this server")]),
            widgets.HTML("<b>Sessions</b>"),
            self._sessions,
            widgets.HTML("<b>Kernels</b>"),
            self._kernels,
            widgets.HBox([self._spec, _button("start kernel", self._start, tooltip="start a kernel and run cells there")]),
        ]
        self.add_class("rm-panel")
        self._thread = threading.Thread(target=self._loop, name="remote_magic-panel", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the worker

    @property
    def running(self) -> bool:
        """True while the panel refreshes itself."""
        return self._thread.is_alive()

    def submit(self, label: str, action: Callable[[], Any]) -> None:
        """Run ``action`` on the panel's thread (then redraw); show ``label`` meanwhile."""
        if self._stopped.is_set():
            return
        self._status.value = f"{html.escape(label)}&hellip;"
        self._jobs.put((label, action))

    def _loop(self) -> None:
        job: tuple[str, Callable[[], Any]] | None = ("Loading", self.model.refresh)
        while not self._stopped.is_set():
            try:
                if job is None:
                    self.model.refresh()
                else:
                    job[1]()
                self._render()
            except Exception as exc:  # a bug in drawing must not kill the refreshing silently
                self.model.refresh_error = one_line(exc)
            try:
                job = self._jobs.get(timeout=self.interval)
            except queue.Empty:
                job = None
            if job is None and self._stopped.is_set():
                break

    def stop(self) -> None:
        """Stop refreshing and replace the panel's content with a note (the widget stays)."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            self._jobs.put(None)
            old = list(self.children)
            self.children = [widgets.HTML("<i>remote_magic panel closed; %remote panel opens a new one.</i>")]
            for child in old:
                _close_tree(child)
            for rows in self._rows.values():
                for row in rows.values():
                    _close_tree(row.box)
                rows.clear()

    def close(self) -> None:
        """Stop refreshing and close the widget and all its parts."""
        self.stop()
        with self._lock:
            for child in self.children:
                _close_tree(child)
            super().close()

    # ------------------------------------------------------------------ drawing

    def _render(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._drawing = True
            try:
                self._draw()
            finally:
                self._drawing = False

    def _draw(self) -> None:
        model = self.model
        connections = tuple(model.connections)
        if connections != self._shown_connections:
            self._shown_connections = connections
            self._connection.options = connections
        if self._connection.value != model.current:
            self._connection.value = model.current
        specs = tuple(model.kernelspecs)
        if specs != self._shown_specs:
            self._shown_specs = specs
            self._spec.options = specs
            self._spec.value = model.default_spec if model.default_spec in specs else (specs[0] if specs else None)
        for widget, value in ((self._status, self._status_html()), (self._where, self._where_html())):
            if widget.value != value:
                widget.value = value
        self._sync(self._sessions, "session", model.sessions)
        self._sync(self._kernels, "kernel", model.kernels)

    def _status_html(self) -> str:
        model = self.model
        error = model.error or model.refresh_error
        if error:
            return f"<span class='rm-error' style='color:#c62828'>&#9888; {html.escape(error)}</span>"
        if model.current is None:
            return "No connection yet: add a server URL below."
        return html.escape(model.message or f"Connected to {model.current!r}.")

    def _where_html(self) -> str:
        """Where cells run: a lasting notice, in warning colours after this panel moved them to a new kernel."""
        model = self.model
        fresh = any(row["current"] and row["id"] in model.started_here for row in model.kernels)
        colors = "#fff3e0;border-left:4px solid #ef6c00" if fresh else "#e3f2fd;border-left:4px solid #1565c0"
        return f"<div style='background:{colors};padding:2px 8px'>{html.escape(model.where)}</div>"

    def _sync(self, box: widgets.VBox, kind: str, data: list[Row]) -> None:
        """Update the rows of ``box`` in place: new rows are added, gone ones closed."""
        rows = self._rows[kind]
        wanted = {item["id"] for item in data}
        for key in [key for key in rows if key not in wanted]:
            _close_tree(rows.pop(key).box)
        for item in data:
            if item["id"] in rows:
                rows[item["id"]].update(item)
            else:
                rows[item["id"]] = _Row(self, kind, item)
        lines = [rows[item["id"]].box for item in data] or [self._empty[kind]]
        children = (box.children[0], *lines)
        if tuple(box.children) != children:
            box.children = children

    # ------------------------------------------------------------------ buttons

    def ask(self, question: str, answer: str, label: str, action: Callable[[], Any]) -> None:
        """Show ``question`` with an ``answer`` button that submits ``action`` (and a cancel button)."""
        self._question.value = html.escape(question)
        self._confirm_button.description = answer
        self._pending = lambda: self.submit(label, action)
        self._confirm.layout.display = "flex"

    def _confirmed(self) -> None:
        pending, self._pending = self._pending, None
        self._hide_question()
        if pending is not None:
            pending()

    def _hide_question(self) -> None:
        self._pending = None
        self._confirm.layout.display = "none"

    def _on_connection_chosen(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if name and name != self.model.current and not self._drawing:
            self.submit(f"Switching to {name}", lambda: self.model.use_connection(name))

    def _ask_remove(self) -> None:
        name = self._connection.value
        if name:
            self.ask(f"Remove connection {name!r}? Kernels it started are shut down.", "remove",
                     f"Removing {name}", lambda: self.model.remove_connection(name))

    def _add(self) -> None:
        url, token = self._url.value.strip(), self._token.value
        self._url.value = self._token.value = ""  # the token never stays in the widget state
        if url:
            self.submit("Connecting", lambda: self.model.add_connection(url, token or None))

    def _start(self) -> None:
        spec, name = self._spec.value, self.model.current
        self.ask(
            f"Start a new {spec or 'default'} kernel? The next %%remote cells of {name!r} then run there, "
            "without the variables of the kernel they use now.",
            "start",
            f"Starting a {spec or 'default'} kernel",
            lambda: self.model.start(spec),
        )


_panels: weakref.WeakKeyDictionary[Registry, Panel] = weakref.WeakKeyDictionary()


def show_panel(registry: Registry, *, interval: float = 2.0) -> Panel:
    """A new live panel over ``registry``; an older panel of the same registry stops refreshing."""
    old = _panels.get(registry)
    if old is not None:
        old.stop()
    panel = Panel(registry, interval=interval)
    _panels[registry] = panel
    return panel
