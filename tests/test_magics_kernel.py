"""The magics as a user runs them: in a real local ipykernel (via nbclient and jupyter_client),
against a real remote Jupyter Server."""

from __future__ import annotations

import json
import queue
import re

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TOKEN_ENV = "RM_TEST_TOKEN"

# Cells that exercise every kind of output; run once locally and once through %%remote.
OUTPUT_CELLS = [
    # flushed: a kernel sends each stream on its own schedule, so unflushed the order between them varies
    "print('out', flush=True)\nimport sys\nprint('err', file=sys.stderr, flush=True)\nprint('out again')",
    "from IPython.display import display, HTML, Markdown, JSON\n"
    "display(HTML('<i>h</i>'), metadata={'isolated': True})\n"
    "display(Markdown('**m**'))\n"
    "display(JSON({'a': [1, 2]}))",
    # a 1x1 PNG built in place, shown as image/png with metadata
    "import struct, zlib, base64\n"
    "from IPython.display import Image, display\n"
    "def chunk(kind, data):\n"
    "    body = kind + data\n"
    "    return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))\n"
    "png = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0))"
    " + chunk(b'IDAT', zlib.compress(b'\\x00\\xff\\x00\\x00')) + chunk(b'IEND', b'')\n"
    "display(Image(data=png, format='png', width=10))",
    "h = display('v1', display_id='cross-cell')",
    "h.update('v2')\nprint('updated the earlier cell')",
    "from IPython.display import clear_output\nfor i in range(3):\n    clear_output(wait=True)\n    print(i)",
    "print('gone')\nclear_output()\nprint('kept')",
    "{'answer': 42}",
]


def strip_counts(outputs):
    cleaned = []
    for output in outputs:
        output = dict(output)
        output.pop("execution_count", None)
        cleaned.append(output)
    return cleaned


def execute_notebook(cells, tmp_path, allow_errors=False):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=allow_errors, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return nb


def connect_cell(server):
    return f"%load_ext remote_magic\n%remote connect {server.url} --token-env {TOKEN_ENV} --name nb"


@pytest.fixture
def token_env(jupyter_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, jupyter_server.token)


def test_outputs_arrive_exactly_as_a_local_run_makes_them(jupyter_server, token_env, tmp_path):
    local = execute_notebook(OUTPUT_CELLS, tmp_path)
    remote = execute_notebook([connect_cell(jupyter_server)] + ["%%remote\n" + c for c in OUTPUT_CELLS], tmp_path)
    connect_output = remote.cells[0].outputs
    assert connect_output[0]["text"].startswith("Connected 'nb'")
    for local_cell, remote_cell in zip(local.cells, remote.cells[1:]):
        assert strip_counts(remote_cell.outputs) == strip_counts(local_cell.outputs), remote_cell.source
    # the checks above compared like with like; make sure the outputs are the ones intended
    by_source = {cell.source.removeprefix("%%remote\n"): cell.outputs for cell in remote.cells[1:]}
    streams = [(o["name"], o["text"]) for o in by_source[OUTPUT_CELLS[0]]]
    assert streams == [("stdout", "out\n"), ("stderr", "err\n"), ("stdout", "out again\n")]
    assert by_source[OUTPUT_CELLS[1]][0]["metadata"] == {"isolated": True}
    image = by_source[OUTPUT_CELLS[2]][0]
    assert image["data"]["image/png"] and image["metadata"] == {"image/png": {"width": 10}}
    assert by_source[OUTPUT_CELLS[3]][0]["data"]["text/plain"] == "'v2'"  # updated from the next cell
    assert by_source[OUTPUT_CELLS[5]] == [{"output_type": "stream", "name": "stdout", "text": "2\n"}]
    assert by_source[OUTPUT_CELLS[6]][0]["text"] == "kept\n"
    result = by_source[OUTPUT_CELLS[7]][0]
    assert result["output_type"] == "execute_result" and result["data"]["text/plain"] == "{'answer': 42}"
    notebook_json = json.dumps(remote)
    assert jupyter_server.token not in notebook_json


def test_remote_error_stops_run_all_with_the_remote_exception(jupyter_server, token_env, tmp_path):
    cells = [connect_cell(jupyter_server), "%%remote\nimport json\njson.loads('{nope')", "%%remote\nprint('never')"]
    with pytest.raises(CellExecutionError) as info:
        execute_notebook(cells, tmp_path)
    assert info.value.ename == "JSONDecodeError"
    assert info.value.evalue == "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"

    notebook = execute_notebook(cells, tmp_path, allow_errors=True)
    error = notebook.cells[1].outputs[-1]
    assert error["output_type"] == "error" and error["ename"] == "JSONDecodeError"
    assert error["evalue"] == info.value.evalue
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error["traceback"]))
    assert "json.loads('{nope')" in traceback
    assert "remote_magic/" not in traceback, "a local traceback from inside the package leaked"


@pytest.fixture
def local_kernel(jupyter_server, token_env):
    """A real local ipykernel with the extension loaded and connected to the test server."""
    manager, client = start_new_kernel(kernel_name="python3")
    reply = client.execute_interactive(connect_cell(jupyter_server), timeout=60)
    assert reply["content"]["status"] == "ok"
    yield manager, client
    client.execute_interactive("%remote disconnect nb", timeout=60)
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def test_streaming_is_live(local_kernel):
    _, client = local_kernel
    texts = []
    hook = lambda msg: texts.append(msg["content"]["text"]) if msg["msg_type"] == "stream" else None  # noqa: E731
    code = "%%remote\nimport time\nprint('first', flush=True)\ntime.sleep(3)\nprint('second')"
    reply = client.execute_interactive(code, output_hook=hook, timeout=60)
    assert reply["content"]["status"] == "ok"
    assert "".join(texts) == "first\nsecond\n"
    assert "first" in texts[0] and "second" not in texts[0], "the first line only arrived with the end of the cell"


def test_ctrl_c_interrupts_the_remote_kernel(local_kernel):
    manager, client = local_kernel
    msg_id = client.execute("%%remote\nimport time\nprint('started', flush=True)\ntime.sleep(60)")
    while True:
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            assert "started" in msg["content"]["text"]
            break
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=20)  # bounded: an interrupt that hangs fails here
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    # The local kernel aborts execute requests that reach it while it clears its queue after an
    # error; its idle status comes once that clearing is under way.
    while not (msg["parent_header"].get("msg_id") == msg_id and msg["content"].get("execution_state") == "idle"):
        msg = client.get_iopub_msg(timeout=30)
    after = client.execute_interactive("%%remote\nprint('remote kernel still there')", timeout=30)
    assert after["content"]["status"] == "ok"


def test_input_and_getpass_are_asked_locally(local_kernel):
    _, client = local_kernel
    prompts = queue.Queue()
    answers = iter(["bob", "s3cret"])

    def answer(msg):
        prompts.put(msg["content"])
        client.input(next(answers))

    texts = []
    code = "%%remote\nimport getpass\nname = input('name? ')\npw = getpass.getpass('pw: ')\nprint('got', name, len(pw))"
    reply = client.execute_interactive(
        code,
        allow_stdin=True,
        stdin_hook=answer,
        output_hook=lambda m: texts.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
        timeout=60,
    )
    assert reply["content"]["status"] == "ok"
    first, second = prompts.get_nowait(), prompts.get_nowait()
    assert first == {"prompt": "name? ", "password": False}
    assert second == {"prompt": "pw: ", "password": True}
    assert "got bob 6\n" in "".join(texts)


def test_input_without_a_local_stdin_fails_cleanly(local_kernel):
    _, client = local_kernel
    reply = client.execute_interactive("%%remote\ninput('x? ')", allow_stdin=False, timeout=60)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "StdinNotImplementedError"


def test_a_remote_traceback_is_headed_by_the_kernel_and_connection_it_came_from(jupyter_server, token_env, tmp_path):
    cells = [connect_cell(jupyter_server), "1", "2", "%%remote\ndef f():\n    return 1 / 0\nf()", "%%remote --no-raise\nf()"]
    notebook = execute_notebook(cells, tmp_path, allow_errors=True)
    error = notebook.cells[3].outputs[-1]
    header, *frames = error["traceback"]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", header)
    assert re.fullmatch(r"Remote error on kernel [0-9a-f]{8} of connection 'nb' \(its Cell In\[n\] numbers are that kernel's\):", plain)
    body = "\n".join(frames)
    assert "\x1b[" in body, "the remote traceback lost its colours"
    assert "Cell In[1], line 3" in re.sub(r"\x1b\[[0-9;]*m", "", body) and "ZeroDivisionError" in body
    shown = "".join(o.get("text", "") for o in notebook.cells[4].outputs if o["output_type"] == "stream")
    assert re.sub(r"\x1b\[[0-9;]*m", "", shown).startswith(plain + "\n"), "--no-raise showed the traceback without its header"
