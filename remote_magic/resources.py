"""REST wrappers for kernelspecs, kernels and sessions. Each method returns the server's JSON model."""

from __future__ import annotations

from typing import Any

from .errors import NotFound, ServerError
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
    """``/api/kernels``: list, get, start, interrupt, restart, shutdown.

    Where the server does not list its kernels (gateways, by default), :meth:`list` gives those
    this client started or asked for by id, each asked for again by id."""

    def __init__(self, rest: RestClient):
        self._rest = rest
        self.known: set[str] = set()  # ids of kernels started or found through this client

    def list(self) -> list[Model]:
        if self._rest.capabilities.kernel_listing:
            return self._rest.request("GET", "kernels")
        models = []
        for kernel_id in sorted(self.known):
            try:
                models.append(self.get(kernel_id))
            except NotFound:
                pass  # gone: get() forgot it
        return models

    def get(self, kernel_id: str) -> Model:
        try:
            model = self._rest.request("GET", "kernels", kernel_id)
        except NotFound:
            self.known.discard(kernel_id)
            raise
        self.known.add(kernel_id)
        return model

    def start(self, name: str | None = None, path: str | None = None, env: dict[str, str] | None = None) -> Model:
        """Start a kernel; ``env`` is for a gateway (``KERNEL_USERNAME`` and other ``KERNEL_*``)."""
        body: Model = {}
        if name:
            body["name"] = name
        if path:
            body["path"] = path
        if env:
            body["env"] = env
        model = self._rest.request("POST", "kernels", json_body=body)
        self.known.add(model["id"])
        return model

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
        self.known.discard(kernel_id)


class Sessions:
    """``/api/sessions``: a session binds a kernel to a path (usually a notebook)."""

    def __init__(self, rest: RestClient):
        self._rest = rest

    def list(self) -> list[Model]:
        """The sessions; none where the server offers no sessions (a gateway)."""
        if not self._rest.capabilities.sessions:
            return []
        return self._rest.request("GET", "sessions")

    def get(self, session_id: str) -> Model:
        return self._rest.request("GET", "sessions", session_id)

    def find(self, path: str) -> Model | None:
        """The session bound to ``path``, if there is one (never one where the server offers no
        sessions)."""
        return next((s for s in self.list() if s.get("path") == path), None)

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
        else:  # named always: jupyverse starts no kernel for a session without a kernel name
            kernel["name"] = kernel_name or Kernelspecs(self._rest).default()
        body = {"path": path, "name": name or path.rsplit("/", 1)[-1], "type": type, "kernel": kernel}
        return self._rest.request("POST", "sessions", json_body=body, timeout=120)

    def patch(self, session_id: str, **changes: Any) -> Model:
        """``PATCH /api/sessions/{id}`` with e.g. ``path=...`` or ``kernel={"name": ...}``."""
        return self._rest.request("PATCH", "sessions", session_id, json_body=changes, timeout=120)

    def delete(self, session_id: str) -> None:
        """Delete the session (the server shuts its kernel down too)."""
        self._rest.request("DELETE", "sessions", session_id, timeout=120)
