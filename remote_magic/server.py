"""A Jupyter server: its REST resources and the websockets of its kernels."""

from __future__ import annotations

import getpass
import os
import threading
import uuid
from typing import Any

from .capabilities import Capabilities
from .channel import KernelChannel
from .contents import Contents
from .errors import NotAJupyterServer, NotFound
from .kernel import RemoteKernel
from .resources import Kernels, Kernelspecs, Sessions
from .rest import DEFAULT_TIMEOUT, RestClient
from .urls import ServerURL, parse_server_url


class Server:
    """A Jupyter Server, JupyterHub single-user server, classic Notebook server, Kernel or
    Enterprise Gateway, or jupyverse (see :attr:`capabilities`).

    ``url`` may carry ``?token=``: it is taken and stripped at once. Without it the token comes from
    ``token``, else from the ``JUPYTER_TOKEN`` environment variable, else none is sent. With
    ``password`` (and no token) the server is logged in to at once, as a browser does; the password
    is not kept. Without either, the server's cookies (and XSRF check) are used as a browser's.

    On a gateway, kernels start with ``KERNEL_USERNAME`` (``kernel_username``, else
    ``$KERNEL_USERNAME``, else the local user), the local ``KERNEL_*`` variables and ``kernel_env``.

    Kernel websockets: ``ping_timeout`` seconds of silence, although pinged, mean the link is dead
    (a cell waiting on it fails with ConnectionLost within twice that); ``start_timeout`` is how long
    to wait for a kernel that is still starting.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        verify: bool = True,
        ca_bundle: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        protocol: str = "auto",
        ping_timeout: float = 10.0,
        start_timeout: float = 120.0,
        password: str | None = None,
        kernel_username: str | None = None,
        kernel_env: dict[str, str] | None = None,
    ):
        self.url: ServerURL
        self.url, url_token = parse_server_url(url)
        token = token or url_token or (None if password else os.environ.get("JUPYTER_TOKEN")) or None
        self._rest = RestClient(self.url, token, verify=verify, ca_bundle=ca_bundle, timeout=timeout)
        if password and not token:
            try:
                self._rest.login(password)
            except Exception:
                self._rest.close()
                raise
        self.kernel_username = kernel_username  # None: $KERNEL_USERNAME, else the local user
        self.kernel_env = dict(kernel_env or {})
        self.protocol = protocol
        self.ping_timeout = ping_timeout
        self.start_timeout = start_timeout
        self.kernelspecs = Kernelspecs(self._rest)
        self.kernels = Kernels(self._rest)
        self.sessions = Sessions(self._rest)
        self.contents = Contents(self._rest)
        self._channels: dict[str, KernelChannel] = {}
        self._channels_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Server {self.url}>"

    @property
    def has_token(self) -> bool:
        return self._rest.auth.has_token

    @property
    def capabilities(self) -> Capabilities:
        """The server's kind and what it offers (asked once; proves the credentials)."""
        return self._rest.capabilities

    # ------------------------------------------------------------------ server-wide calls

    def version(self) -> str:
        """The server's API version (``GET /api``); raises NotAJupyterServer for anything else."""
        try:
            body = self._rest.request("GET")
        except NotFound:
            if self.capabilities.kind == "jupyverse":
                return self.capabilities.version or "?"
            raise NotAJupyterServer(
                f"{self.url} has no Jupyter API (/api is not found); check the URL and its base path."
            ) from None
        if not isinstance(body, dict) or "version" not in body:
            raise NotAJupyterServer(f"{self.url} answered /api without a version; it is not a Jupyter server.")
        return str(body["version"])

    def status(self) -> dict[str, Any]:
        """``GET /api/status``: started, last_activity, connections, kernels."""
        return self._rest.request("GET", "status")

    def me(self) -> dict[str, Any] | None:
        """``GET /api/me``: the identity the token maps to (None where the server has no such API)."""
        try:
            return self._rest.request("GET", "me")
        except NotFound:
            return None

    def shutdown(self) -> None:
        """``POST /api/shutdown``: stop the whole server and every kernel on it."""
        self.close()
        self._rest.request("POST", "shutdown")

    # ------------------------------------------------------------------ kernels

    def kernel(self, kernel_id: str) -> RemoteKernel:
        """A handle on an existing kernel (checked to exist)."""
        self.kernels.get(kernel_id)
        return RemoteKernel(self, kernel_id)

    def start_kernel(self, name: str | None = None, path: str | None = None) -> RemoteKernel:
        """Start a kernel of the kernelspec ``name`` (the server's default if None). jupyverse
        starts kernels only in sessions: there the kernel gets a session of its own."""
        if self.capabilities.kind == "jupyverse":
            own = f"{(path or 'remote_magic').strip('/')}/kernel-{uuid.uuid4().hex[:12]}.ipynb"
            kernel_id = self.sessions.create(own, kernel_name=name)["kernel"]["id"]
            self.kernels.known.add(kernel_id)
            return RemoteKernel(self, kernel_id)
        return RemoteKernel(self, self.kernels.start(name, path, self.start_env())["id"])

    def start_env(self) -> dict[str, str]:
        """The environment a new kernel is given: on a gateway ``KERNEL_USERNAME`` and every
        ``KERNEL_*`` variable, as its own clients send (JupyterLab's gateway client); else none."""
        if not self.capabilities.gateway:
            return {}
        env = {name: value for name, value in os.environ.items() if name.startswith("KERNEL_")}
        env["KERNEL_USERNAME"] = self.kernel_username or env.get("KERNEL_USERNAME") or getpass.getuser()
        return {**env, **self.kernel_env}

    def channel(self, kernel_id: str) -> KernelChannel:
        """The one websocket of this process to ``kernel_id`` (a second would evict the first)."""
        with self._channels_lock:
            channel = self._channels.get(kernel_id)
            if channel is None or channel.is_closed:
                channel = KernelChannel(
                    self._rest,
                    kernel_id,
                    protocol_choice=self.protocol,
                    ping_timeout=self.ping_timeout,
                    start_timeout=self.start_timeout,
                )
                self._channels[kernel_id] = channel
            return channel

    def observed_state(self, kernel_id: str) -> str | None:
        """The execution state this process last saw on its open websocket to ``kernel_id``
        (None without one): what the kernel itself says, where a server's model may lag."""
        with self._channels_lock:
            channel = self._channels.get(kernel_id)
        return channel.state.value if channel is not None and channel.is_open else None

    def forget_channel(self, kernel_id: str) -> None:
        with self._channels_lock:
            channel = self._channels.pop(kernel_id, None)
        if channel is not None:
            channel.close()

    def close(self) -> None:
        """Close every websocket and the HTTP session; kernels keep running."""
        for kernel_id in list(self._channels):
            self.forget_channel(kernel_id)
        self._rest.close()
