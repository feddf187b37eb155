"""What kind of server answers, and what it offers: found once, when a connection is made, with
all its questions asked at the same time.

Kernel and Enterprise Gateway have no Contents API and (by default) forbid listing kernels and
sessions; the classic Notebook server selects no websocket subprotocol; jupyverse has no ``/api``
root. Requests for what a server does not offer fail at once with a one-line
:class:`~remote_magic.errors.NotOffered`, never with a token error or a bare 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    NotAJupyterServer,
    NotFound,
    NotOffered,
    NotPermitted,
)

if TYPE_CHECKING:
    from .rest import RestClient

#: Server kinds, as shown to users.
KINDS = {
    "jupyter-server": "Jupyter Server",
    "jupyterhub-singleuser": "JupyterHub single-user server",
    "notebook6": "classic Notebook server",
    "kernel-gateway": "Kernel Gateway",
    "enterprise-gateway": "Enterprise Gateway",
    "jupyverse": "jupyverse server",
}

#: Each capability, and what a request for it is told where it is absent.
OFFERS = {
    "contents": "files (it has no Contents API)",
    "sessions": "sessions (it does not list them); %remote start SPEC starts a kernel without one",
    "kernel_listing": "a list of its kernels; %remote kernels shows those this connection knows",
}


@dataclass
class Capabilities:
    """The server's kind and version, and which optional APIs it offers."""

    kind: str
    version: str
    contents: bool = True
    sessions: bool = True
    kernel_listing: bool = True

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def gateway(self) -> bool:
        """A Kernel or Enterprise Gateway (kernels get ``KERNEL_*`` variables at start)."""
        return self.kind in ("kernel-gateway", "enterprise-gateway")

    def offers(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in OFFERS}

    def require(self, method: str, path: tuple[str, ...], where: str) -> None:
        """Raise NotOffered for an API call to something this server does not offer."""
        resource = path[0].strip("/") if path else ""
        if resource == "kernels":
            absent = "kernel_listing" if method == "GET" and len(path) == 1 and not self.kernel_listing else None
        else:
            absent = resource if resource in ("contents", "sessions") and not getattr(self, resource) else None
        if absent:
            raise NotOffered(f"{where} is a {self.label}, which does not offer {OFFERS[absent]}.")


#: The optional APIs, each probed with a ``GET`` of its listing (contents: the root's, kept small).
_PROBES: dict[str, tuple[tuple[str, ...], dict[str, str] | None]] = {
    "kernel_listing": (("kernels",), None),
    "sessions": (("sessions",), None),
    "contents": (("contents",), {"content": "0"}),
}


def detect(rest: RestClient) -> Capabilities:
    """Ask the server what it is and offers, all questions at once; prove the credentials on
    the way (raises AuthenticationError for refused ones, NotAJupyterServer for something else)."""
    headers: dict[str, str] = {}
    answers = rest.at_once({"root": lambda: rest.request("GET", response_headers=headers), **_listings(rest)})
    root = answers["root"]
    if isinstance(root, NotFound):  # jupyverse has no /api root; anything else without one is not Jupyter
        root = None
        if _cookie_for_token(rest):
            answers.update(rest.at_once(_listings(rest)))
    elif isinstance(root, Exception):
        raise root
    specs = answers["kernelspecs"]  # needs the credentials everywhere
    if isinstance(specs, NotFound):
        raise NotAJupyterServer(
            f"{rest.url} has no Jupyter API (api/kernelspecs is not found); check the URL and its base path."
        )
    if isinstance(specs, Exception):
        raise specs
    if root is not None and (not isinstance(root, dict) or "version" not in root):
        raise NotAJupyterServer(f"{rest.url} answered /api without a version; it is not a Jupyter server.")
    rest.credentials_proven = True
    caps = Capabilities(kind="jupyter-server", version=str((root or {}).get("version", "")))
    for name in _PROBES:
        setattr(caps, name, _offered(answers[name]))
    caps.kind = _kind(rest, root, headers, caps)
    if caps.kind == "notebook6":
        rest.selects_subprotocol = False  # never a refused v1 handshake first
    return caps


def _listings(rest: RestClient) -> dict[str, Callable[[], Any]]:
    """The kernelspecs (they need the credentials everywhere) and each optional API's listing."""
    calls: dict[str, Callable[[], Any]] = {"kernelspecs": lambda: rest.request("GET", "kernelspecs")}
    for name, (path, query) in _PROBES.items():
        calls[name] = lambda path=path, query=query: rest.request("GET", *path, query=query)
    return calls


def _cookie_for_token(rest: RestClient) -> bool:
    """A server without ``/api`` that has a Jupyter API (jupyverse) but refuses it, or sends to its
    login page, without its cookie: trade the token for the cookie (True when it did)."""
    status = rest.status("kernelspecs")
    if status in (301, 302, 303, 307, 401, 403) and rest.auth.has_token:
        rest.token_cookie()
        return True
    return False


def _offered(answer: Any) -> bool:
    """Whether a listing's answer shows the API offered. With the credentials proven by the
    kernelspecs asked beside it, a refusal (a bare 403 too) means the listing is forbidden."""
    if isinstance(answer, (NotFound, NotPermitted, AuthenticationError)):
        return False
    if isinstance(answer, Exception):
        raise answer
    return True


def _kind(rest: RestClient, root: Any, headers: dict[str, str], caps: Capabilities) -> str:
    if root is None:
        return "jupyverse"
    if "gateway_version" in root:
        return "enterprise-gateway"
    if not caps.contents:
        return "kernel-gateway"
    if "x-jupyterhub-version" in {name.lower() for name in headers} or re.match(r"/user/[^/]+/", rest.url.base_path):
        return "jupyterhub-singleuser"
    major = caps.version.split(".", 1)[0]
    if major.isdigit() and 4 <= int(major) <= 6:
        return "notebook6"  # Notebook 7 runs on Jupyter Server, whose versions are 0.x to 2.x
    return "jupyter-server"
