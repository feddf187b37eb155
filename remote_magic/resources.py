"""REST wrappers for kernelspecs, kernels and sessions. Each method returns the server's JSON model."""

from __future__ import annotations

from typing import Any

from .errors import AuthenticationError, NotFound, ServerError
from .rest import RestClient

Model = dict[str, Any]


class Kernelspecs:
    """``/api/kernelspecs``."""

    def __init__(self, rest: RestClient):
        self._rest = rest

    def list(self) -> Model:
        """``{"default": name, "kernelspecs": {name: spec}}``."""
        return self._rest.request("GET", "kernelspecs")

    def get(self, name: str) -> Model:
        return self._rest.request("GET", "kernelspecs", name)

    def default(self) -> str:
        return self.list().get("default") or "python3"


class Kernels:
    """``/api/kernels``: list, get, start, interrupt, restart, shutdown."""

    def __init__(self, rest: RestClient):
        self._rest = rest

    def list(self) -> list[Model]:
        return self._rest.request("GET", "kernels")

    def get(self, kernel_id: str) -> Model:
        return self._rest.request("GET", "kernels", kernel_id)

    def start(self, name: str | None = None, path: str | None = None) -> Model:
        body: Model = {}
        if name:
            body["name"] = name
        if path:
            body["path"] = path
        return self._rest.request("POST", "kernels", json_body=body)

    def interrupt(self, kernel_id: str) -> None:
        self._rest.request("POST", "kernels", kernel_id, "interrupt")

    def restart(self, kernel_id: str) -> Model:
        try:
            return self._rest.request("POST", "kernels", kernel_id, "restart", timeout=120)
        except ServerError:
            self.get(kernel_id)  # Jupyter Server answers 500, not 404, for a kernel it does not have
            raise

    def shutdown(self, kernel_id: str) -> None:
        self._rest.request("DELETE", "kernels", kernel_id, timeout=120)


class Sessions:
    """``/api/sessions``: a session binds a kernel to a path (usually a notebook)."""

    def __init__(self, rest: RestClient):
        self._rest = rest

    def list(self) -> list[Model]:
        return self._rest.request("GET", "sessions")

    def get(self, session_id: str) -> Model:
        return self._rest.request("GET", "sessions", session_id)

    def find(self, path: str) -> Model | None:
        """The session bound to ``path``, if there is one. None too where the server does not
        let sessions be listed (a Kernel Gateway forbids it by default) or has no sessions API."""
        try:
            sessions = self.list()
        except (AuthenticationError, NotFound):
            return None  # whatever is done next with the path (create, attach) still says why
        return next((s for s in sessions if s.get("path") == path), None)

    def create(
        self,
        path: str,
        *,
        kernel_name: str | None = None,
        kernel_id: str | None = None,
        name: str | None = None,
        type: str = "notebook",
    ) -> Model:
        """``POST /api/sessions``; the server returns the existing session when ``path`` has one."""
        kernel: Model = {}
        if kernel_id:
            kernel["id"] = kernel_id
        elif kernel_name:
            kernel["name"] = kernel_name
        body = {"path": path, "name": name or path.rsplit("/", 1)[-1], "type": type, "kernel": kernel}
        return self._rest.request("POST", "sessions", json_body=body, timeout=120)

    def patch(self, session_id: str, **changes: Any) -> Model:
        """``PATCH /api/sessions/{id}`` with e.g. ``path=...`` or ``kernel={"name": ...}``."""
        return self._rest.request("PATCH", "sessions", session_id, json_body=changes, timeout=120)

    def delete(self, session_id: str) -> None:
        """Delete the session (the server shuts its kernel down too)."""
        self._rest.request("DELETE", "sessions", session_id, timeout=120)
