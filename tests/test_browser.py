"""The panel in a real JupyterLab page, driven by headless Chromium (Debian's ``chromium``).

A notebook loads the extension, connects to the test server and shows ``%remote panel``; the
page's buttons then interrupt and restart a kernel kept busy on that server, and the page shows
the state change. A screenshot goes to ``artifacts/`` at the repository root.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from remote_magic.launch import LaunchedServer

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
NOTEBOOK_CELLS = [
    "%load_ext remote_magic",
    "import os\nurl = os.environ['RM_TEST_URL']\n%remote connect $url --token-env RM_TEST_TOKEN --name test",
    "%%remote\nanswer = 42",
    "%remote panel --interval 1",
]

UX_CELLS = [
    "%load_ext remote_magic",
    "import os\nurl = os.environ['RM_TEST_URL']\n%remote connect $url --token-env RM_TEST_TOKEN --name test",
    ("import time\nfrom remote_magic.progress import progress_bar\n"
    "bar = progress_bar('Uploading example.bin')\nbar(1 << 20, 8 << 20)\ntime.sleep(1)\nbar(3 << 20, 8 << 20)"),
    "%remote upload big.bin --force",
    "%remote --help",
]


def chromium_executable() -> str:
    """Debian's Chromium; a missing one fails the test (CI must run it, never skip it)."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail("Chromium is not installed: run `make chromium` (apt-get install chromium) to run the browser test.")
    return path


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]' to run the browser test.")
    return sync_playwright()


@contextlib.contextmanager
def chromium_page(width: int, height: int, *, timeout: float, failure: str) -> Iterator[Any]:
    """A page of headless Chromium; if the block fails, a full-page screenshot goes to
    ``artifacts/<failure>`` first."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(timeout)
        try:
            yield page
        except Exception:
            page.screenshot(path=str(ARTIFACTS / failure), full_page=True)
            raise
        finally:
            browser.close()


def start_jupyterlab(tmp_path: Path, notebooks: dict[str, nbformat.NotebookNode], env: dict[str, str]) -> LaunchedServer:
    """JupyterLab on 127.0.0.1 serving ``notebooks`` (file name -> notebook), with quiet settings."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    "expose_app_in_browser": True,
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
                }
            }
        )
    )
    (config / "labconfig").mkdir()
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    root = tmp_path / "lab"
    root.mkdir()
    for name, notebook in notebooks.items():
        nbformat.write(notebook, root / name)
    env = {
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        **env,
    }
    return LaunchedServer(str(root), command=(sys.executable, "-m", "jupyterlab"), env=env, startup_timeout=90)


def open_in_jupyterlab(page, lab: LaunchedServer, name: str) -> None:
    """Log in (the token goes in the form, never in a URL) and open notebook ``name``."""
    page.goto(lab.url + "login")
    page.fill("input[name=password]", lab.token)
    with page.expect_navigation():
        page.click("#login_submit")
    page.goto(lab.url + f"lab/tree/{name}")


def open_and_run_all(page: Any, lab: LaunchedServer, name: str) -> None:
    """Open notebook ``name``, wait for its kernel, and run all its cells."""
    open_in_jupyterlab(page, lab, name)
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; }",
        timeout=90_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def code_notebook(cells: list[str]) -> nbformat.NotebookNode:
    """A Python notebook of code ``cells``."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


@pytest.fixture
def jupyterlab(jupyter_server, tmp_path):
    """JupyterLab on 127.0.0.1 with a notebook that shows the panel over the test server."""
    notebooks = {name + ".ipynb": code_notebook(cells) for name, cells in (("panel", NOTEBOOK_CELLS), ("ux", UX_CELLS), ("jobs", JOBS_CELLS))}
    env = {"RM_TEST_URL": jupyter_server.url, "RM_TEST_TOKEN": jupyter_server.token}
    lab = start_jupyterlab(tmp_path, notebooks, env)
    (tmp_path / "lab" / "big.bin").write_bytes(os.urandom(8 << 20))
    yield lab
    lab.stop()


JOBS_CELLS = [
    "%load_ext remote_magic",
    "import os\nurl = os.environ['RM_TEST_URL']\n%remote connect $url --token-env RM_TEST_TOKEN --name test",
    ("%%remote --bg --name report\nimport time\nfor i in range(3):\n    time.sleep(0.7)\n    print(f'job line {i}', flush=True)\n"
     "from IPython.display import HTML, display\ndisplay(HTML('<b>job html</b>'))"),
    "%%remote --bg --name broken\nimport time\ntime.sleep(0.5)\nraise ValueError('job went wrong')",
    "print('a local cell ran')",
    "%remote wait report",
    "print('after the wait')",
]


def test_background_job_output_lands_in_its_own_cell_in_jupyterlab(jupyter_server, jupyterlab):
    with chromium_page(1200, 1600, timeout=90_000, failure="jobs-jupyterlab-failure.png") as page:
        open_and_run_all(page, jupyterlab, "jobs.ipynb")
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        report, broken, local, wait, after = (cells.nth(i) for i in range(2, 7))
        after.locator(".jp-OutputArea-output").filter(has_text="after the wait").wait_for(timeout=90_000)
        broken.locator(".jp-OutputArea-output").filter(has_text="job went wrong").wait_for(timeout=30_000)
        outputs = [cell.locator(".jp-OutputArea").inner_text() for cell in (report, broken, local, wait, after)]
        assert "job line 0" in outputs[0] and "job line 2" in outputs[0] and "job html" in outputs[0], outputs[0]
        assert "ValueError" in outputs[1] and "Remote error on kernel" in outputs[1], outputs[1]
        for text in outputs[2:]:  # later cells, which ran while the jobs printed, got none of it
            assert "job line" not in text and "job html" not in text and "ValueError" not in text, text
        assert outputs[2].strip() == "a local cell ran"
        report.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "background-jobs.png"), clip=_around(report, after))


def test_panel_buttons_in_jupyterlab(jupyter_server, jupyterlab, kernel, make_busy):
    busy = make_busy(kernel)
    state = f".rm-kernel-{kernel.id} .rm-state"
    with chromium_page(1500, 1000, timeout=60_000, failure="panel-jupyterlab-failure.png") as page:
        open_and_run_all(page, jupyterlab, "panel.ipynb")
        page.wait_for_selector(".rm-panel", timeout=90_000)
        page.wait_for_function(
            "s => { const e = document.querySelector(s); return e && e.innerText.includes('busy'); }", arg=state
        )

        page.click(f".rm-kernel-{kernel.id} button:has-text('interrupt')")
        page.wait_for_function(
            "s => { const e = document.querySelector(s); return e && e.innerText.includes('idle'); }", arg=state
        )
        busy.join(60)
        assert busy.outcome.error().ename == "KeyboardInterrupt"

        kernel.run("marker = 'set before the restart'", raise_on_error=True)
        page.click(f".rm-kernel-{kernel.id} button:has-text('restart')")
        page.wait_for_function(
            "() => document.querySelector('.rm-status').innerText.includes('Restarted kernel')"
        )
        page.wait_for_function(
            "s => { const e = document.querySelector(s); return e && e.innerText.includes('idle'); }", arg=state
        )
        assert kernel.run("marker").error().ename == "NameError", "the restart button did not restart"
        assert "Connected 'test'" in page.inner_text(".jp-Notebook")
        # the notebook's own session, named after it, is listed as the current one
        own = page.locator(".rm-row", has_text="-panel-test.ipynb")
        assert own.count() == 2 and own.first.inner_text().startswith("\u25cf")
        page.locator(".rm-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "panel-jupyterlab.png"), full_page=True)
        leaked = jupyter_server.token in page.content()  # (JupyterLab's page holds its own token)
        assert not leaked, "the remote server's token is in the page"


def test_upload_progress_and_help_in_jupyterlab(jupyter_server, jupyterlab):
    with chromium_page(900, 2400, timeout=90_000, failure="ux-jupyterlab-failure.png") as page:
        open_and_run_all(page, jupyterlab, "ux.ipynb")
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        help_cell, upload_cell, bar_cell = cells.nth(4), cells.nth(3), cells.nth(2)
        help_cell.locator(".rm-help").wait_for()
        # a transfer under way: a widget bar with percentage, rate and time left
        bar = bar_cell.locator(".rm-progress")
        bar.wait_for()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.rm-progress')].some(e => e.innerText.includes('3.0 MB of 8.0 MB'))"
        )
        status = bar.inner_text()
        assert "38%" in status and "/s" in status and "left" in status and "Uploading example.bin" in status
        # a finished upload: its bar became one line of text, and nothing was written to stderr
        upload_cell.locator(".rm-progress-done").wait_for()
        assert upload_cell.locator(".rm-progress-done").inner_text().startswith("\u2713 Uploading big.bin: done, 8.0 MB in ")
        assert upload_cell.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0, "a red stderr box"
        assert "Uploaded big.bin (8.0 MB, 8 chunks)" in upload_cell.inner_text()
        bar_cell.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "upload-progress.png"), clip=_around(bar_cell, upload_cell))
        # help: words wrap whole in a narrow notebook, grouped by task
        text = help_cell.locator(".rm-help").inner_text()
        assert text.index("Connect:") < text.index("Files:") < text.index("Kernels & sessions:")
        assert "[--no-raise]" in text
        breaks = help_cell.locator(".rm-help td, .rm-help pre").evaluate_all(
            "els => els.map(e => getComputedStyle(e).wordBreak)"
        )
        assert breaks and set(breaks) == {"normal"}, breaks
        names = help_cell.locator(".rm-help td code").evaluate_all("els => els.map(e => e.getClientRects().length)")
        assert names and set(names) == {1}, "a subcommand name was broken across lines"
        help_cell.scroll_into_view_if_needed()
        help_cell.screenshot(path=str(ARTIFACTS / "help.png"))


def _around(*locators) -> dict[str, float]:
    """The page area that holds these elements (for a screenshot)."""
    boxes = [locator.bounding_box() for locator in locators]
    left, top = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
    right, bottom = max(b["x"] + b["width"] for b in boxes), max(b["y"] + b["height"] for b in boxes)
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}
