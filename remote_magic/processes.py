"""The processes of this machine, as far as the topology needs them: pid, parent, command line.

psutil is used when installed; otherwise ``/proc`` on Linux; elsewhere nothing is known. Command
lines are redacted: a value that looks like a secret (``--IdentityProvider.token=...``,
``--password ...``, ``?token=...``) never leaves this module.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REDACTED = "<hidden>"

#: An option naming a secret: its value (``=VALUE`` or the next word) is hidden.
_SECRET_OPTION = re.compile(r"^(--?[\w.-]*(?:token|password|secret|cookie|key)[\w.-]*)(=.*)?$", re.IGNORECASE)
_SECRET_IN_URL = re.compile(r"((?:token|password)=)[^\s&#'\"]+", re.IGNORECASE)


@dataclass(frozen=True)
class ProcessInfo:
    """One process: its id, its parent's id, and its (redacted) command line."""

    pid: int
    ppid: int
    command: tuple[str, ...]

    @property
    def command_line(self) -> str:
        return " ".join(self.command)


def redact_command(argv: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``argv`` with the values of secret-looking options and URL parameters replaced by ``<hidden>``."""
    out: list[str] = []
    hide_next = False
    for word in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        match = _SECRET_OPTION.match(word)
        if match and match.group(2) is not None:
            out.append(f"{match.group(1)}={REDACTED}")
        elif match:
            out.append(word)
            hide_next = True
        else:
            out.append(_SECRET_IN_URL.sub(lambda m: m.group(1) + REDACTED, word))
    return tuple(out)


def all_processes() -> dict[int, ProcessInfo]:
    """Every process this user can see, by pid (empty where neither psutil nor /proc is available)."""
    try:
        import psutil
    except ImportError:
        return _from_proc()
    found = {}
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "name"]):
        info = proc.info
        argv = info.get("cmdline") or ([info["name"]] if info.get("name") else [])
        found[info["pid"]] = ProcessInfo(info["pid"], info.get("ppid") or 0, redact_command(argv))
    return found


def _from_proc() -> dict[int, ProcessInfo]:
    found: dict[int, ProcessInfo] = {}
    root = Path("/proc")
    if not root.is_dir():
        return found
    for entry in root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        words = [w.decode(errors="replace") for w in argv if w]
        found[int(entry.name)] = ProcessInfo(int(entry.name), ppid, redact_command(words))
    return found


def process_using_file(path: str | os.PathLike[str], processes: dict[int, ProcessInfo]) -> ProcessInfo | None:
    """The process whose command line names the connection file ``path`` (``-f .../kernel-ID.json``).
    Launchers (a shell, a wrapper) whose child names it too give way to that child."""
    target = os.path.realpath(path)
    name = os.path.basename(target)
    matches = [
        proc
        for proc in processes.values()
        if any(word.endswith(name) and os.path.realpath(word.split("=", 1)[-1]) == target for word in proc.command)
    ]
    pids = {proc.pid for proc in matches}
    innermost = [proc for proc in matches if not any(other.ppid == proc.pid for other in matches if other.pid in pids)]
    return innermost[0] if innermost else None


def descendants(pid: int, processes: dict[int, ProcessInfo]) -> list[ProcessInfo]:
    """The children, grandchildren, ... of ``pid``."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [proc for proc in processes.values() if proc.ppid == parent]
        found += children
        frontier += [child.pid for child in children]
    return found


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
