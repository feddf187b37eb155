"""One cell on two real Jupyter Servers at once: results per target, labelled outputs, a failing target."""

from __future__ import annotations

import json
import re

import pytest
from IPython.utils.capture import capture_output

from remote_magic import ConnectionNotFound, TargetsFailed, UsageError
from remote_magic.fanout import StreamLabels, run_on
from remote_magic.launch import LaunchedServer


@pytest.fixture(scope="module")
def second_server(tmp_path_factory):
    launched = LaunchedServer(str(tmp_path_factory.mktemp("second-root")))
    yield launched
    launched.stop()


@pytest.fixture
def two(registry, jupyter_server, second_server):
    """A registry connected to both servers as alpha and beta; each kernel knows its name."""
    for name, launched in (("alpha", jupyter_server), ("beta", second_server)):
        registry.connect(launched.url, token=launched.token, name=name).run(f"WHERE = {name!r}", raise_on_error=True)
    return registry


def meet(tmp_path, then=""):
    """Remote code: mark this target started, wait (bounded) until every target has, then ``then``.
    Run one target after the other, the first would give up with a TimeoutError."""
    return (
        "import os, time, json\n"
        "start = time.time()\n"
        f"open(os.path.join({str(tmp_path)!r}, WHERE), 'w').close()\n"
        "deadline = time.time() + 20\n"
        f"while not all(os.path.exists(os.path.join({str(tmp_path)!r}, n)) for n in ('alpha', 'beta')):\n"
        "    if time.time() > deadline:\n"
        "        raise TimeoutError('the other target never started')\n"
        "    time.sleep(0.05)\n"
        f"{then}"
    )


def test_run_on_runs_every_target_in_parallel_and_returns_one_result_each(two, tmp_path):
    results = run_on(two, ["alpha", "beta"], meet(tmp_path, "print(json.dumps([WHERE, start, time.time()]))"))
    assert sorted(results) == ["alpha", "beta"]
    assert all(result.ok for result in results.values()), {n: r.reply for n, r in results.items()}
    spans = {name: json.loads(result.text()) for name, result in results.items()}
    assert [spans[name][0] for name in ("alpha", "beta")] == ["alpha", "beta"]  # each ran on its own server
    (_, a_start, a_end), (_, b_start, b_end) = spans["alpha"], spans["beta"]
    assert a_start < b_end and b_start < a_end  # the remote clocks show the overlap


def test_a_failing_target_has_its_error_and_the_others_their_results(two):
    results = run_on(two, "all", "assert WHERE == 'alpha', 'not on ' + WHERE\nWHERE")
    assert results["alpha"].ok and results["alpha"].result == {"text/plain": "'alpha'"}
    failed = results["beta"]
    assert failed.status == "error" and failed.reply["ename"] == "AssertionError"
    assert failed.error().evalue == "not on beta"


def test_targets_are_checked_before_anything_runs(two):
    with pytest.raises(ConnectionNotFound, match="gamma"):
        run_on(two, "alpha,gamma", "ALPHA_RAN = True")
    assert "ALPHA_RAN" not in two.get("alpha").run("print(dir())").text()
    with pytest.raises(UsageError, match="--on needs"):
        run_on(two, " , ", "1")


def test_interleaved_streams_keep_one_label_per_line():
    labels = StreamLabels()
    written = "".join(
        [
            labels.label("stdout", "alpha", "a1\na2 "),
            labels.label("stdout", "beta", "b1\n"),
            labels.label("stdout", "alpha", "a3\n"),
            labels.label("stderr", "beta", "e1\n"),
        ]
    )
    assert written == "[stdout:alpha] a1\n[stdout:alpha] a2 \n[stdout:beta] b1\n[stdout:alpha] a3\n[stderr:beta] e1\n"


# ------------------------------------------------------------------------------------ the magic


@pytest.fixture
def fan_shell(shell, jupyter_server, second_server, monkeypatch):
    monkeypatch.setenv("RM_ALPHA", jupyter_server.token)
    monkeypatch.setenv("RM_BETA", second_server.token)
    shell.run_line_magic("remote", f"connect {jupyter_server.url} --token-env RM_ALPHA --name alpha")
    shell.run_line_magic("remote", f"connect {second_server.url} --token-env RM_BETA --name beta")
    for name in ("alpha", "beta"):
        assert shell.run_cell(f"%%remote -c {name}\nWHERE = {name!r}").success
    return shell


def test_cell_on_two_servers_shows_labelled_outputs(fan_shell, tmp_path):
    code = meet(tmp_path, "print('hello from', WHERE)\nfrom IPython.display import HTML, display\ndisplay(HTML(f'<b>{WHERE}</b>'))\nWHERE")
    with capture_output() as captured:
        outcome = fan_shell.run_cell("%%remote --on alpha,beta\n" + code)
    assert outcome.success, outcome.error_in_exec
    lines = captured.stdout.splitlines()
    assert "[stdout:alpha] hello from alpha" in lines and "[stdout:beta] hello from beta" in lines
    assert lines.count("[output:alpha]") == 1 and lines.count("[output:beta]") == 1  # before each HTML
    assert lines.index("Out[alpha]:") < lines.index("Out[beta]:")
    html = [o.data.get("text/html") for o in captured.outputs]
    assert sorted(h for h in html if h) == ["<b>alpha</b>", "<b>beta</b>"]
    results = [o.data["text/plain"] for o in captured.outputs if "text/html" not in o.data]
    assert results == ["'alpha'", "'beta'"]


def test_cell_fails_naming_the_failing_target(fan_shell):
    with capture_output() as captured:
        outcome = fan_shell.run_cell("%%remote --on all\nprint('ran on', WHERE)\nassert WHERE == 'alpha', 'not here'")
    error = outcome.error_in_exec
    assert isinstance(error, TargetsFailed)
    assert list(error.failed) == ["beta"] and error.succeeded == ["alpha"]
    assert re.search(r"failed on beta \(AssertionError: not here\); it succeeded on alpha", str(error))
    assert "[stdout:alpha] ran on alpha" in captured.stdout and "[stdout:beta] ran on beta" in captured.stdout
    assert "[error:beta]" in captured.stderr and "AssertionError" in captured.stderr
    assert "[error:alpha]" not in captured.stderr
