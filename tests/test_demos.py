"""Every demo notebook runs top to bottom in a real local kernel, as a user would run it; so does
the README's demo command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import nbformat
import pytest

from remote_magic.contents import output_text
from remote_magic.demo import REPOSITORY, execute_notebook, main
from remote_magic.discovery import runtime_dir

DEMOS = sorted((REPOSITORY / "demo_notebooks").glob("*.ipynb"))

EXPECTED = {
    "quickstart.ipynb": [
        "Connected 'local': http://127.0.0.1:",
        "Hello from the remote kernel: pid",
        "42",
        "**Markdown** rendered by the *remote* kernel",
        "ZeroDivisionError",
        "Uploaded data.csv (12 B, 1 chunk) to inputs/data.csv",
        "2 rows, sum of y = 6",
        "AlreadyExists: 'summary.txt' exists locally",
        "── cell 1 · code ──\ntotal = answer * 2",
        "[application/vnd.jupyter.widget-view+json]",
        "22 ['summary.txt', 'data.csv']",
        "Disconnected 'local'; stopped 1 kernel",
    ],
    "lifecycle.ipynb": [
        "Connected 'lifecycle': http://127.0.0.1:",
        "Created notebook Untitled.ipynb",
        "Untitled.ipynb: 0 cells",
        "Renamed Untitled.ipynb to sum.ipynb",
        "sum.ipynb: 1 cell\n── cell 1 · code ──\n1 + 1",
        "session sum.ipynb",
        "Checkpoint 'checkpoint' of sum.ipynb saved",
        "Restored sum.ipynb to checkpoint 'checkpoint'",
        "Shut down http://127.0.0.1:",
    ],
}


def test_every_demo_notebook_is_covered():
    assert sorted(path.name for path in DEMOS) == sorted(EXPECTED)


def cell_texts(notebook) -> list[str]:
    return ["\n".join(output_text(o) for o in cell.get("outputs", [])) for cell in notebook.cells if cell.cell_type == "code"]


def launched_pids(texts: list[str]) -> list[int]:
    return [int(pid) for text in texts for pid in re.findall(r"Launched a private Jupyter Server \(pid (\d+)", text)]


def gone(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    return not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("demo", DEMOS, ids=lambda path: path.stem)
def test_demo_notebook_runs_cleanly(demo):
    tokens: set[str] = set()

    def read_tokens(**_: object) -> None:
        """After each cell: the tokens of the servers running now (the notebook's own among them)."""
        for info_file in runtime_dir().glob("jpserver-*.json"):
            try:
                tokens.add(json.loads(info_file.read_text())["token"])
            except (OSError, ValueError, KeyError):
                continue

    notebook = execute_notebook(demo, on_cell_executed=read_tokens)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells), "every code cell ran"
    for cell in code_cells:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        expected = "raises-exception" in cell.metadata.get("tags", [])
        assert bool(errors) == expected, f"unexpected outcome in cell:\n{cell.source}\n{errors}"
    texts = cell_texts(notebook)
    everything = "\n".join(texts)
    for snippet in EXPECTED[demo.name]:
        assert snippet in everything, f"{snippet!r} did not come back"
    assert tokens, "the notebook's server was seen while it ran"
    saved = json.dumps(notebook)
    assert not [token for token in tokens if token and token in saved], "a token leaked into the notebook"
    pids = launched_pids(texts)
    assert len(pids) == 1 and gone(pids[0]), "the notebook's server is stopped at its end"


def test_the_readme_demo_command(tmp_path):
    output = tmp_path / "quickstart.executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "remote_magic.demo", "--output", str(output)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Executed notebook: {output}" in done.stdout
    assert "[4] %%remote\n    42\n" in done.stdout and "All 18 code cells ran." in done.stdout
    executed = nbformat.read(output, as_version=4)
    assert "Hello from the remote kernel" in "\n".join(cell_texts(executed))
    assert output.with_suffix(".kernel.log").exists()


def test_a_failing_notebook_fails_the_demo_command(tmp_path, capsys):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('before')"), nbformat.v4.new_code_cell("raise ValueError('boom')")])
    source = tmp_path / "bad.ipynb"
    nbformat.write(notebook, source)
    output = tmp_path / "bad.executed.ipynb"
    assert main([str(source), "--output", str(output)]) == 1
    out = capsys.readouterr()
    assert "The demo failed: bad.ipynb: ValueError: boom" in out.err
    assert "[1] print('before')\n    before" in out.out
    assert "ValueError: boom" in "\n".join(cell_texts(nbformat.read(output, as_version=4)))
    assert main([str(tmp_path / "missing.ipynb")]) == 2
    assert "No notebook at" in capsys.readouterr().err


def test_one_print_sent_in_several_messages_reads_as_one_output():
    from remote_magic.demo import merge_streams

    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "22"},
        {"output_type": "stream", "name": "stdout", "text": " ['a']\n"},
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}},
        {"output_type": "stream", "name": "stdout", "text": "after\n"},
    ]
    assert merge_streams(outputs) == [
        {"output_type": "stream", "name": "stdout", "text": "22 ['a']\n"},
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        {"output_type": "display_data", "data": {"text/plain": "x"}, "metadata": {}},
        {"output_type": "stream", "name": "stdout", "text": "after\n"},
    ]



def test_the_summary_shows_markdown_as_text_and_wraps_long_lines_between_words():
    from remote_magic.demo import summary

    long_line = " ".join(f"word{i:03d}" for i in range(60))
    cell = nbformat.v4.new_code_cell("show()", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "**bold** text", "text/plain": "<IPython.core.display.Markdown object>"}),
        nbformat.v4.new_output("stream", name="stdout", text=long_line + "\n"),
    ]
    text = summary(nbformat.v4.new_notebook(cells=[cell]), width=50, max_lines=20)
    assert "    **bold** text" in text.splitlines() and "Markdown object" not in text
    lines = text.splitlines()[2:]
    assert all(len(line) <= 4 + 50 for line in lines)
    assert " ".join(" ".join(lines).split()) == long_line, "a word was cut"
