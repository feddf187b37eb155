"""Server addresses: parse a user's URL, strip a token from it, join API paths under a base URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

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
    """
    text = (url or "").strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"Not a server URL: {_without_query(url)!r}; give one like http://host:8888/")
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


def _without_query(url: str) -> str:
    return (url or "").split("?", 1)[0]
