"""The panel in a real JupyterLab page over every kind of server a user points it at.

One notebook connects to Notebook 6, Kernel Gateway, Enterprise Gateway, a token-less server, a
password-only server, jupyverse and a JupyterHub user server; keeps each connection's kernel busy
from a thread; and shows ``%remote panel``. For each connection the page's dropdown selects it,
the kernel row shows the kernel busy, its "interrupt" button stops the loop, and a screenshot of
that state goes to ``artifacts/panel-<kind>.png``.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from hubserver import JupyterHub, missing_component
from servers import (
    PASSWORD,
    enterprise_gateway,
    jupyverse,
    kernel_gateway,
    missing,
    new_token,
    notebook6,
    password_server,
    server_root,
    tokenless_server,
)
from test_browser import (
    ARTIFACTS,
    chromium_page,
    code_notebook,
    open_and_run_all,
    start_jupyterlab,
)

CELLS = [
    "%load_ext remote_magic",
    # Connect to each server as a user would; the credentials come from the environment.
    ("import json, os\n"
    "for name, options in json.loads(os.environ['RM_FLEET']).items():\n"
    "    get_ipython().run_line_magic('remote', f'connect {options} --name {name}')"),
    # Keep each connection's kernel busy with a loop that only an interrupt ends; go on once every
    # loop has started (its first output came back), so a busy state in the panel is the loop's.
    ("import threading, remote_magic\n"
    "outcomes, workers, started = {}, [], []\n"
    "def loop(connection, event):\n"
    "    code = 'print(\"looping\", flush=True)\\nimport time\\nfor _ in range(6000): time.sleep(0.1)'\n"
    "    try:\n"
    "        outcomes[connection.name] = connection.kernel.run(code, on_message=lambda msg: event.set())\n"
    "    except Exception as exc:\n"
    "        outcomes[connection.name] = exc\n"
    "for connection in remote_magic.registry:\n"
    "    connection.kernel_for(None)\n"
    "    started.append(threading.Event())\n"
    "    workers.append(threading.Thread(target=loop, args=(connection, started[-1]), daemon=True))\n"
    "    workers[-1].start()\n"
    "assert all(event.wait(120) for event in started), outcomes\n"
    "print('KERNELS=' + json.dumps({c.name: c.kernel.id for c in remote_magic.registry}))"),
    "%remote panel --interval 1",
]


ENDED_CELL = (
    "for worker in workers:\n"
    "    worker.join(60)\n"
    "print('ENDED=' + json.dumps({n: r.error().ename if hasattr(r, 'error') and r.error() else repr(r) for n, r in outcomes.items()}))"
)
RUN_NEW_CELL = """async code => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = panel.content.model.sharedModel;
    cells.insertCell(cells.cells.length, {cell_type: 'code', source: code});
    panel.content.activeCellIndex = cells.cells.length - 1;
    await window.jupyterapp.commands.execute('notebook:run-cell');
}"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Every kind of server, started for real: ``{name: (connect options, {variable: secret})}``."""
    started = []

    def start(process):
        started.append(process)
        return process

    try:
        servers = {
            "nb6": start(notebook6(server_root(tmp_path_factory, "b-nb6"), new_token())),
            "kg": start(kernel_gateway(new_token())),
            "eg": start(enterprise_gateway(new_token())),
            "jupyverse": start(jupyverse(server_root(tmp_path_factory, "b-verse"), new_token())),
        }
        fleet = {name: (f"{s.url} --token-env RM_{name.upper()}_TOKEN", {f"RM_{name.upper()}_TOKEN": s.token}) for name, s in servers.items()}
        tokenless = start(tokenless_server(server_root(tmp_path_factory, "b-tokenless")))
        fleet["tokenless"] = (tokenless.url, {})
        locked = start(password_server(server_root(tmp_path_factory, "b-password"), PASSWORD))
        fleet["password"] = (f"{locked.url} --password-env RM_PASSWORD", {"RM_PASSWORD": PASSWORD})
        reason = missing_component()
        if reason:
            missing(f"JupyterHub cannot run: {reason}")
        hub = start(JupyterHub())
        user = f"u{uuid.uuid4().hex[:8]}"
        fleet["hub"] = (f"{hub.url} --token-env RM_HUB_TOKEN", {"RM_HUB_TOKEN": hub.user_token(user)})
        yield fleet
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture
def lab(fleet, tmp_path):
    env = {"RM_FLEET": json.dumps({name: options for name, (options, _) in fleet.items()})}
    for _, secrets in fleet.values():
        env.update(secrets)
    started = start_jupyterlab(tmp_path, {"fleet.ipynb": code_notebook(CELLS)}, env)
    yield started
    started.stop()


@pytest.mark.timeout(900)  # seven servers, a hub spawn and JupyterLab start first
def test_panel_interrupts_a_kernel_on_every_kind_of_server(fleet, lab):
    with chromium_page(1500, 1000, timeout=60_000, failure="panel-servers-failure.png") as page:
        open_and_run_all(page, lab, "fleet.ipynb")
        page.wait_for_selector(".rm-panel", timeout=180_000)
        kernels = json.loads(re.search(r"KERNELS=(\{.*\})", page.inner_text(".jp-Notebook")).group(1))
        assert set(kernels) == set(fleet)
        for name, kernel_id in kernels.items():
            page.select_option(".rm-panel select >> nth=0", label=name)
            state = f".rm-kernel-{kernel_id} .rm-state"
            page.wait_for_function(
                "s => { const e = document.querySelector(s); return e && e.innerText.includes('busy'); }", arg=state
            )
            page.locator(".rm-panel").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"panel-{name}.png"), full_page=True)
            page.click(f".rm-kernel-{kernel_id} button:has-text('interrupt')")
            page.wait_for_function(
                "s => { const e = document.querySelector(s); return e && e.innerText.includes('idle'); }", arg=state
            )
        page.evaluate(RUN_NEW_CELL, ENDED_CELL)
        page.wait_for_function("() => document.querySelector('.jp-Notebook').innerText.includes('ENDED=')")
        ended = json.loads(re.search(r"ENDED=(\{.*\})", page.inner_text(".jp-Notebook")).group(1))
        assert ended == {name: "KeyboardInterrupt" for name in fleet}
        content = page.content()
        for _, secrets in fleet.values():
            for secret in secrets.values():
                assert secret not in content, "a server's secret is in the page"
