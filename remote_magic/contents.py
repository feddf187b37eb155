"""``/api/contents``: files, directories and notebooks on the server."""

from __future__ import annotations

from typing import Any

from .rest import RestClient

Model = dict[str, Any]


class Contents:
    """The Contents API. Paths are relative to the server's root directory, ``/``-separated."""

    def __init__(self, rest: RestClient):
        self._rest = rest

    def get(self, path: str = "", *, content: bool = True, format: str | None = None) -> Model:
        """The model at ``path``; with ``content=False`` only its metadata."""
        query = {"content": "1" if content else "0"}
        if format:
            query["format"] = format
        return self._rest.request("GET", "contents", path, query=query)

    def list(self, path: str = "") -> list[Model]:
        """The entries of the directory at ``path`` (metadata only)."""
        model = self.get(path)
        if model.get("type") != "directory":
            return [model]
        return list(model.get("content") or [])
