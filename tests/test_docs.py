"""The documentation site builds as ``make docs`` builds it (warnings are errors, references and
internal links checked) and holds the API reference and the demo notebooks with their outputs."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import missing

DOCS = Path(__file__).resolve().parents[1] / "docs"


def build(source: Path, out: Path) -> subprocess.CompletedProcess:
    """``make docs``'s Sphinx command, with docs/conf.py, from ``source`` into ``out``."""
    if importlib.util.find_spec("myst_nb") is None:
        missing("the documentation build needs the docs extra: make docs (pip install -e '.[docs]')")
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-q", "-c", str(DOCS), str(source), str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = build(DOCS, out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_site_has_every_page_the_api_reference_and_the_executed_demos(site):
    for page in ("user-guide", "kernels-and-panel", "python-api", "compatibility", "security", "troubleshooting", "performance"):
        assert (site / f"{page}.html").exists(), page
    api = (site / "api.html").read_text()
    for name in ("remote_magic.connect", "remote_magic.RemoteKernel.run", "remote_magic.transfer.Transfers.upload",
                 "remote_magic.progress.progress_bar", "remote_magic.errors.RemoteExecutionError"):
        assert f'id="{name}"' in api, name
    assert "Upload a local file, byte for byte." in api  # a docstring, rendered
    quickstart = (site / "demos" / "quickstart.html").read_text()
    assert "Hello from the remote kernel: pid" in quickstart  # a stream output of the executed notebook
    assert "<strong>Markdown</strong> rendered by the <em>remote</em> kernel" in quickstart
    assert "ZeroDivisionError" in quickstart
    assert "Shut down http://127.0.0.1:" in (site / "demos" / "lifecycle.html").read_text()
    index = (site / "index.html").read_text()
    assert 'href="api.html"' in index and 'href="demos/quickstart.html"' in index


def test_a_broken_internal_link_fails_the_build(site, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "conf.py"))
    page = source / "performance.md"
    page.write_text(page.read_text() + "\nSee [the TLS notes](security.md#no-such-heading).\n")
    done = build(source, tmp_path / "out")
    assert done.returncode != 0
    assert "no-such-heading" in done.stderr and "myst.xref_missing" in done.stderr
