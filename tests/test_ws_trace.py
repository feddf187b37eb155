"""websocket-client's trace logging never shows the token or cookies (remote_magic.wslog)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import websocket

import remote_magic.wslog  # noqa: F401  (installs the filter; the channel imports it too)
from remote_magic.wslog import REDACTED, redact

SECRET = "0123abcd" * 6


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def trace(capfd):
    """websocket-client's trace on, plus capturing handlers on the ``websocket`` logger and on the
    root logger; returns their lines. Tests call ``websocket.enableTrace(True)`` themselves: its
    handler binds the stderr of that moment, and ``capfd`` makes a new one for the test's call."""
    on_logger, on_root = Capture(), Capture()
    root = logging.getLogger()
    level = root.level
    logging.getLogger("websocket").addHandler(on_logger)
    root.addHandler(on_root)
    root.setLevel(logging.DEBUG)
    yield on_logger.lines, on_root.lines
    websocket.enableTrace(False)
    logging.getLogger("websocket").removeHandler(on_logger)
    root.removeHandler(on_root)
    root.setLevel(level)


def test_a_traced_kernel_websocket_shows_no_token(trace, jupyter_server, kernel, capfd):
    websocket.enableTrace(True)
    result = kernel.run("1")  # opens the kernel's websocket: the handshake is traced
    assert result.outputs[0]["data"]["text/plain"] == "1"
    out, err = capfd.readouterr()
    for lines in trace:
        text = "\n".join(lines)
        assert "/channels?session_id=" in text  # the handshake was logged ...
        assert f"Authorization: {REDACTED}" in text  # ... with its header redacted
        assert jupyter_server.token not in text
    assert f"Authorization: {REDACTED}" in err  # enableTrace's own handler writes to stderr
    assert jupyter_server.token not in err and jupyter_server.token not in out


@pytest.mark.parametrize(
    "message, args",
    [
        ("--- request header ---\nGET /x HTTP/1.1\r\nAuthorization: token %s\r\nCookie: a=%s\r\n\r\n", (SECRET, SECRET)),
        ("%s", ("GET /api/kernels/k/channels?session_id=s&token=" + SECRET + " HTTP/1.1",)),
        ("Set-Cookie: username-127-0-0-1=\"2|1:0|%s\"; Path=/", (SECRET,)),
        ("headers {'authorization': 'Bearer %s', 'proxy-authorization': 'Basic %s'}", (SECRET, SECRET)),
        ("raw b'GET /?token=%s HTTP/1.1\\r\\nCookie: x=%s\\r\\nHost: h'", (SECRET, SECRET)),
        ("Authorization: token %d (args that do not format)", (SECRET,)),
    ],
)
def test_every_record_is_redacted_whatever_its_form(trace, capfd, message, args):
    websocket.enableTrace(True)
    logging.getLogger("websocket").debug(message, *args)
    for lines in trace:
        assert lines and SECRET not in lines[-1] and REDACTED in lines[-1]
    assert SECRET not in capfd.readouterr().err


def test_exception_text_is_redacted(trace, capfd):
    websocket.enableTrace(True)
    try:
        raise RuntimeError(f"handshake refused; Set-Cookie: s={SECRET}")
    except RuntimeError:
        logging.getLogger("websocket").exception("handshake failed")
    for text in (*(lines[-1] for lines in trace), capfd.readouterr().err):
        assert "RuntimeError: handshake refused; Set-Cookie: " in text and SECRET not in text


def test_redaction_keeps_everything_else():
    dump = "GET /api/kernels/k/channels?session_id=s&token=T HTTP/1.1\r\nHost: h:1\r\nAuthorization: token T\r\n"
    assert redact(dump) == (
        f"GET /api/kernels/k/channels?session_id=s&token={REDACTED} HTTP/1.1\r\nHost: h:1\r\nAuthorization: {REDACTED}\r\n"
    )


@pytest.mark.parametrize("order", ["trace before import", "trace after import"])
def test_the_filter_works_whenever_trace_is_turned_on(order):
    enable = "import websocket; websocket.enableTrace(True)"
    code = "; ".join(
        [
            enable if order == "trace before import" else "pass",
            "import remote_magic.wslog, logging",  # importing installs the filter
            enable if order == "trace after import" else "pass",
            f"logging.getLogger('websocket').debug('Authorization: token {SECRET}')",
            "remote_magic.wslog.install()",  # a second install changes nothing
            "print(len(logging.getLogger('websocket').filters))",
        ]
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Authorization: {REDACTED}" in done.stderr and SECRET not in done.stderr
    assert done.stdout.strip() == "1"
