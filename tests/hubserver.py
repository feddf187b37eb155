"""A real JupyterHub on 127.0.0.1 for the tests: configurable-http-proxy from npm, the simple local
spawner, the dummy authenticator, and all its state (sqlite, cookie secret, homes) in a temp dir."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import requests
from servers import ServerProcess

from remote_magic.launch import free_port

ROOT = Path(__file__).resolve().parent.parent
#: Where `make chp` installs configurable-http-proxy (npm); a proxy on PATH is used otherwise.
CACHED_PROXY = ROOT / ".cache" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"

_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {state!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + {state!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {state!r} + "/cookie_secret"
c.JupyterHub.pid_file = {state!r} + "/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {state!r} + "/home/{{username}}"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--ServerApp.allow_root=True"]
c.Spawner.env_keep = ["PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"]
c.JupyterHub.allow_named_servers = True
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # answer 202 at once: progress to follow
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [{{"name": "test-admin", "api_token": {admin_token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "test-admin", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["test-admin"]}}
]
"""


def proxy_command() -> str | None:
    """The configurable-http-proxy to run: the cached npm install, else one on PATH."""
    if CACHED_PROXY.exists():
        return str(CACHED_PROXY)
    return shutil.which("configurable-http-proxy")


def missing_component() -> str | None:
    """Why a hub cannot run here (None when it can)."""
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed (pip install -e '.[test]')"
    if shutil.which("node") is None:
        return "node is not installed (configurable-http-proxy needs it)"
    if proxy_command() is None:
        return "configurable-http-proxy is not installed (make chp)"
    return None


class JupyterHub:
    """``python -m jupyterhub`` with its proxy; :meth:`user_token` makes a user and an API token for them."""

    def __init__(self) -> None:
        self.state = tempfile.mkdtemp(prefix="remote_magic-hub-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.admin_token = secrets.token_hex(24)
        config = Path(self.state) / "jupyterhub_config.py"
        config.write_text(
            _CONFIG.format(
                port=self.port,
                hub_port=free_port(),
                proxy_api_port=free_port(),
                proxy=proxy_command(),
                state=self.state,
                python=sys.executable,
                admin_token=self.admin_token,
            )
        )
        self.server = ServerProcess(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            port=self.port,
            ready=lambda url: requests.get(url + "hub/api/", timeout=2).ok,
            cwd=self.state,
            secrets=[self.admin_token],
        )

    def api(self, method: str, path: str, **options) -> requests.Response:
        """A hub API call as the test's admin service."""
        response = requests.request(
            method, f"{self.url}hub/api/{path}", headers={"Authorization": f"token {self.admin_token}"}, timeout=30, **options
        )
        response.raise_for_status()
        return response

    def user_token(self, name: str) -> str:
        """Create user ``name`` (if new) and a fresh API token of theirs."""
        if requests.get(f"{self.url}hub/api/users/{name}", headers={"Authorization": f"token {self.admin_token}"}, timeout=30).status_code == 404:
            self.api("POST", f"users/{name}")
        return self.api("POST", f"users/{name}/tokens", json={"note": "remote_magic tests"}).json()["token"]

    def server_ready(self, name: str, server: str = "") -> bool:
        """Whether the user's (named) server runs and is ready."""
        model = self.api("GET", f"users/{name}").json()
        return bool((model.get("servers") or {}).get(server, {}).get("ready"))

    def stop_server(self, name: str, server: str = "") -> None:
        path = f"users/{name}/servers/{server}" if server else f"users/{name}/server"
        requests.delete(f"{self.url}hub/api/{path}", headers={"Authorization": f"token {self.admin_token}"}, timeout=60)

    def stop(self) -> None:
        self.server.stop()  # SIGTERM: the hub stops its proxy and the user servers
        shutil.rmtree(self.state, ignore_errors=True)
