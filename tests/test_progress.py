"""Transfer progress as each frontend shows it: a widget bar in a notebook that ends as one line of
text (never a stderr box), a self-updating line on a terminal, nothing in a script."""

from __future__ import annotations

import io
import os

import pytest
from test_magics_kernel import connect_cell, execute_notebook

from remote_magic.progress import (
    LineProgress,
    NoProgress,
    WidgetProgress,
    progress_bar,
    showing_progress,
)

MIB = 1024 * 1024


def test_terminal_line_redraws_in_place_with_percentage_rate_and_time_left(monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")
    out = io.StringIO()
    progress = LineProgress("Uploading big.bin", out)
    monkeypatch.setattr("remote_magic.progress.REDRAW_INTERVAL", 0.0)
    for done in (MIB, 2 * MIB, 3 * MIB):
        progress(done, 4 * MIB)
    progress(4 * MIB, 4 * MIB)
    progress.close(ok=True)
    text = out.getvalue()
    frames = text.split("\r")[1:]
    assert "\n" not in "".join(frames[:-1]), "a redraw left a line behind"
    assert frames[0].startswith("Uploading big.bin  25% |█████ ")
    assert "1.0 MB of 4.0 MB" in frames[0] and "B/s · " in frames[0] and " left" in frames[0]
    assert frames[-1].startswith("Uploading big.bin: done, 4.0 MB in ") and text.endswith("\x1b[K\n")


def test_the_line_never_wraps_so_it_can_be_redrawn(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    out = io.StringIO()
    progress = LineProgress("Uploading a/rather/long/path/to/a/file.bin", out)
    progress(1, 10)
    frame = out.getvalue().split("\r")[1].removesuffix("\x1b[K")
    assert frame.startswith("Uploading a/rather/long") and len(frame) == 39


def test_redraws_are_throttled_but_the_end_is_always_drawn():
    out = io.StringIO()
    progress = LineProgress("Downloading x", out)
    for done in range(1, 101):
        progress(done * 1000, 100_000)
    assert 1 <= out.getvalue().count("\r") < 10, "every call redrew the line"
    progress.close(ok=False)
    assert out.getvalue().rsplit("\r", 1)[1].startswith("Downloading x: stopped at 97.7 KB of 97.7 KB")


def test_a_transfer_done_in_one_piece_draws_nothing():
    out = io.StringIO()
    progress = LineProgress("Uploading small", out)
    progress(12, 12)
    progress.close(ok=True)
    assert out.getvalue() == ""


def test_the_view_follows_the_frontend(monkeypatch):
    monkeypatch.setattr("remote_magic.progress.in_notebook", lambda: False)
    monkeypatch.setattr("remote_magic.progress.is_terminal", lambda: False)
    assert type(progress_bar("x")) is NoProgress
    monkeypatch.setattr("remote_magic.progress.is_terminal", lambda: True)
    assert type(progress_bar("x")) is LineProgress
    monkeypatch.setattr("remote_magic.progress.in_notebook", lambda: True)
    assert type(progress_bar("x")) is WidgetProgress


def test_a_failing_block_marks_the_bar_stopped_and_raises():
    closed = []
    with pytest.raises(RuntimeError):
        with showing_progress("x") as progress:
            progress.close = lambda ok=True: closed.append(ok)
            raise RuntimeError("boom")
    assert closed == [False]


def test_upload_in_a_script_writes_nothing_to_stderr(remote_shell, remote_dir, tmp_path, capfd):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3 * MIB + 5))
    remote_shell.run_line_magic("remote", f"upload {local} {remote_dir}/")
    out, err = capfd.readouterr()
    assert err == ""
    assert "Uploaded" in out and "4 chunks" in out


def test_notebook_upload_and_download_show_a_widget_that_ends_as_a_line(jupyter_server, token_env, remote_dir, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3 * MIB + 5))
    (tmp_path / "back").mkdir()
    cells = [
        connect_cell(jupyter_server),
        f"%remote upload big.bin {remote_dir}/",
        f"%remote download {remote_dir}/big.bin back/",
        f"%remote upload big.bin {remote_dir}/",  # refused: exists
    ]
    notebook = execute_notebook(cells, tmp_path, allow_errors=True)
    assert (tmp_path / "back" / "big.bin").read_bytes() == local.read_bytes()
    for cell, verb in ((notebook.cells[1], "Uploading big.bin"), (notebook.cells[2], f"Downloading {remote_dir}/big.bin")):
        kinds = [(o["output_type"], o.get("name")) for o in cell.outputs]
        assert ("stream", "stderr") not in kinds, cell.outputs
        bar = cell.outputs[0]
        # the widget's display was replaced by its final line (nbclient applies display updates)
        assert bar["output_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" not in bar["data"]
        assert bar["data"]["text/plain"].startswith(f"✓ {verb}: done, 3.0 MB in ")
        assert "rm-progress-done" in bar["data"]["text/html"]
        assert cell.outputs[1]["name"] == "stdout"
    refused = notebook.cells[3].outputs
    assert [o["output_type"] for o in refused] == ["error"], "a refused upload drew a bar"


@pytest.fixture
def token_env(jupyter_server, monkeypatch):
    monkeypatch.setenv("RM_TEST_TOKEN", jupyter_server.token)
