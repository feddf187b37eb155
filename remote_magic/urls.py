"""Server addresses: parse a user's URL, strip a token from it, join API paths under a base URL."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .errors import UsageError


@dataclass(frozen=True)
class ServerURL:
    """A Jupyter server address without secrets: scheme, network location and base path."""

    scheme: str
    netloc: str
    base_path: str  # always starts and ends with "/"

    def __str__(self) -> str:
        return urlunsplit((self.scheme, self.netloc, self.base_path, "", ""))

    def api(self, *parts: str, query: dict[str, str] | None = None) -> str:
        """The HTTP URL of ``api/<parts>`` under the base path; parts are percent-quoted."""
        path = self.base_path + "api"
        for part in parts:
            if part:
                path += "/" + quote(part.strip("/"), safe="/")
        return urlunsplit((self.scheme, self.netloc, path, urlencode(query or {}), ""))

    def websocket(self, *parts: str, query: dict[str, str] | None = None) -> str:
        """The same as :meth:`api` with the scheme swapped to ``ws``/``wss``."""
        url = self.api(*parts, query=query)
        return ("wss" if self.scheme == "https" else "ws") + url[len(self.scheme) :]


def parse_server_url(url: str) -> tuple[ServerURL, str | None]:
    """Split a user's server URL into a clean :class:`ServerURL` and the ``?token=`` it carried.

    Other query parameters and any fragment are dropped; a path such as ``/lab/tree/x.ipynb`` is
    kept as the base path only up to ``/lab``, ``/tree`` or ``/notebooks`` (what browsers show).
    Raises a one-line :class:`UsageError` (which never shows the query) for anything else.
    """
    text = (url or "").strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed "[", or no IPv6 address inside "[ ]"
        raise _not_a_server_url(url, "the host in [ ] must be an IPv6 address") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _not_a_server_url(url, "it needs http:// or https:// and a host")
    _check_host_and_port(url, parts)
    token = dict(parse_qsl(parts.query)).get("token") or None
    segments = (parts.path or "/").split("/")
    for index, segment in enumerate(segments):
        if segment in _UI_SEGMENTS:
            segments = segments[:index]
            break
    path = "/".join(segments).rstrip("/") + "/"
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never keep user:password@
    return ServerURL(parts.scheme, netloc, path), token


_UI_SEGMENTS = {"lab", "tree", "notebooks", "doc", "api"}


def _check_host_and_port(url: str, parts: SplitResult) -> None:
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise _not_a_server_url(url, "the port must be a number from 1 to 65535")
    host = parts.hostname or ""
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _not_a_server_url(url, f"{host!r} is not an IPv6 address") from None
        return
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not all(0 < len(label) < 64 and all(c.isalnum() or c in "-_" for c in label) for label in labels):
        raise _not_a_server_url(url, f"{host!r} is not a host name")


def _not_a_server_url(url: str, reason: str) -> UsageError:
    """The error for a URL that cannot be a server's; it shows neither query nor credentials."""
    shown = re.sub(r"//[^/?#]*@", "//", re.split(r"[?#]", url or "", maxsplit=1)[0])
    return UsageError(f"Not a server URL: {shown!r} ({reason}); give one like http://host:8888/.")
