"""Find the Jupyter servers running on this machine, as ``jupyter server list`` does.

Each server writes ``jpserver-<pid>.json`` into the Jupyter runtime directory; a file whose process
is gone is stale and skipped. The token read from a file is kept on the :class:`ServerInfo` only to
connect with and is never shown (not in its repr, nor in any listing).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .urls import parse_server_url

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


@dataclass(frozen=True)
class ServerInfo:
    """One running local server, from its runtime file."""

    url: str
    root_dir: str
    pid: int
    version: str
    secure: bool
    sock: str
    info_file: str
    token: str = field(default="", repr=False)

    @classmethod
    def from_file(cls, path: Path) -> ServerInfo:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            url=str(data.get("url") or f"http://{data.get('hostname', 'localhost')}:{data['port']}{data.get('base_url', '/')}"),
            root_dir=str(data.get("root_dir") or data.get("notebook_dir") or ""),
            pid=int(data["pid"]),
            version=str(data.get("version", "")),
            secure=bool(data.get("secure")),
            sock=str(data.get("sock") or ""),
            info_file=str(path),
            token=str(data.get("token") or ""),
        )

    def matches(self, url: str) -> bool:
        """Whether ``url`` addresses this server (any loopback spelling of the host, same port and base path)."""
        mine, other = parse_server_url(self.url)[0], parse_server_url(url)[0]
        a, b = urlsplit(str(mine)), urlsplit(str(other))
        same_host = a.hostname == b.hostname or {a.hostname or "", b.hostname or ""} <= _LOCAL_HOSTS
        return a.scheme == b.scheme and same_host and _port(a) == _port(b) and mine.base_path == other.base_path


def runtime_dir() -> Path:
    """Jupyter's runtime directory: jupyter_core's answer when it is installed, else the standard places."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return _fallback_runtime_dir()
    return Path(jupyter_runtime_dir())


def _fallback_runtime_dir() -> Path:
    if os.environ.get("JUPYTER_RUNTIME_DIR"):
        return Path(os.environ["JUPYTER_RUNTIME_DIR"])
    if os.environ.get("JUPYTER_DATA_DIR"):
        return Path(os.environ["JUPYTER_DATA_DIR"]) / "runtime"
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter" / "runtime"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA") or home) / "jupyter" / "runtime"
    data_home = os.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(data_home) / "jupyter" / "runtime"


def running_servers(directory: str | os.PathLike[str] | None = None) -> list[ServerInfo]:
    """The live servers with a runtime file in ``directory`` (default: :func:`runtime_dir`), oldest first.
    Servers listening on a Unix socket are left out (this package speaks TCP)."""
    folder = Path(directory) if directory else runtime_dir()
    found = []
    for path in sorted(folder.glob("jpserver-*.json"), key=_mtime):
        try:
            info = ServerInfo.from_file(path)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not a server file
        if _pid_alive(info.pid) and not info.sock:
            found.append(info)
    return found


def find_running(url: str, directory: str | os.PathLike[str] | None = None) -> ServerInfo | None:
    """The running local server that ``url`` addresses, if any."""
    return next((info for info in running_servers(directory) if info.matches(url)), None)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _pid_alive(pid: int) -> bool:
    """Like jupyter_server's ``check_pid``. On Windows, where probing a process this way is not
    possible without extra packages, every file is taken as live."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def _port(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)
