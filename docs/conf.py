"""Sphinx configuration of the remote_magic documentation site (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPOSITORY = DOCS.parent
sys.path.insert(0, str(REPOSITORY))

project = "remote_magic"
author = "remote_magic contributors"
copyright = "remote_magic contributors, BSD-3-Clause"

extensions = ["myst_nb", "sphinx.ext.autodoc"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]
# The demo notebooks are shown as `make demo` executed them (see _executed_demos below).
nb_execution_mode = "off"
nb_output_stderr = "show"
html_theme = "alabaster"
html_title = "remote_magic"
html_static_path: list[str] = []
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The nitpicky build (-n) checks every cross-reference; names of the libraries underneath are not ours to document.
# Internal helpers named in docstrings are not part of the reference.
nitpick_ignore_regex = [
    (r"py:.*", r"(requests|websocket|ipywidgets|traitlets|IPython|argparse|pathlib|collections|typing|socket|ssl|os|_io)\..*"),
    (r"py:.*", r"RestClient|Sink|remote_magic\.(link|router|sessions|contents\.PathRules|capabilities|celloutput|tables)(\..*)?"),
]


def _short_names(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """Resolve a short name in a docstring (``:class:`KernelDied```, ``:meth:`Registry.remove```)
    to the one documented object whose full name ends with it."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or target.startswith("remote_magic."):
        return None
    domain = env.get_domain("py")
    matches = [
        name for name, entry in domain.objects.items()
        if (name == target or name.endswith("." + target)) and not entry.aliased  # not a class's canonical twin
    ]
    if len(matches) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], matches[0], node, contnode)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", _short_names)


def _executed_demos() -> None:
    """Put each demo notebook, executed, in ``docs/demos/``: the copy ``make demo`` wrote to
    ``artifacts/`` when it is newer than the notebook, else one executed now (the same way)."""
    from remote_magic.demo import execute_notebook

    import nbformat

    target = DOCS / "demos"
    target.mkdir(exist_ok=True)
    for source in sorted((REPOSITORY / "demo_notebooks").glob("*.ipynb")):
        executed = REPOSITORY / "artifacts" / f"{source.stem}.executed.ipynb"
        if not executed.exists() or executed.stat().st_mtime < source.stat().st_mtime:
            executed.parent.mkdir(exist_ok=True)
            print(f"executing {source.name} for the documentation ...", flush=True)
            nbformat.write(execute_notebook(source), executed)
        notebook = nbformat.read(executed, as_version=4)
        for cell in notebook.cells:  # links that lead from demo_notebooks/ into docs/
            if cell.cell_type == "markdown":
                cell.source = cell.source.replace("](../docs/", "](../")
        nbformat.write(notebook, target / source.name)


_executed_demos()
