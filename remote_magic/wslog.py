"""Keep secrets out of websocket-client's logging.

``websocket.enableTrace(True)``, a common debugging step, makes websocket-client log each
handshake's request headers (``Authorization: token ...``, ``Cookie:``) and response headers
(``Set-Cookie:``) on its ``websocket`` logger. A filter on that logger rewrites every record before
any handler sees it, whenever tracing is turned on and whatever handlers are attached. Importing
this module installs it.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# A header's value runs to the end of its line, or to a literal "\r"/"\n" in a repr()'d dump.
_HEADER = re.compile(
    r"(?i)((?:proxy-)?authorization|(?:set-)?cookie)(['\"]?[ \t]*[:=][ \t]*)(?:(?!\\r|\\n)[^\r\n])*"
)
_TOKEN_QUERY = re.compile(r"(?i)([?&;]token=)[^&;#\s'\"\\]*")


def redact(text: str) -> str:
    """``text`` with the values of auth and cookie headers and of ``token=`` queries replaced."""
    text = _HEADER.sub(rf"\1\2{REDACTED}", text)
    return _TOKEN_QUERY.sub(rf"\1{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (formatted with its args), exception and stack text redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a message that does not format: keep every part, redacted
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactSecrets()


def install() -> None:
    """Put the filter on websocket-client's ``websocket`` logger (again is a no-op)."""
    logging.getLogger("websocket").addFilter(_FILTER)


install()
