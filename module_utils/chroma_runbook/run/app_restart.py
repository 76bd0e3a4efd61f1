"""Restarting an application with the manager that runs it (for chroma_app_restart).

One command per manager (supervisor, systemd, docker compose, the app's own command). In the
background the command is started in its own session with its output in a log file and the call
returns at once: the apps of a batch restart together and the caller's health gate proves each
restart (the app must answer healthy and name its new Chroma). In the foreground the call waits
for the command and a failure names the manager, the command, its exit status and its output.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Any, Optional, Sequence

MANAGERS = ("supervisor", "systemd", "docker_compose", "command")
OUTPUT_TAIL = 2000


class RestartError(RuntimeError):
    """The restart could not be started, or it failed in the foreground."""


@dataclass(frozen=True)
class RestartSpec:
    """How one app is restarted."""

    manager: str
    service: str
    supervisorctl: tuple[str, ...] = ("supervisorctl",)
    compose_file: str = ""
    command: tuple[str, ...] = ()

    def problem(self) -> Optional[str]:
        """Why this spec cannot restart anything (None when it can)."""
        if self.manager not in MANAGERS:
            return f"manager must be one of {list(MANAGERS)}, got {self.manager!r}"
        if self.manager == "command":
            return None if self.command else "manager command needs command (the restart argv)"
        if not self.service:
            return f"manager {self.manager} needs service"
        if self.manager == "docker_compose" and not self.compose_file:
            return "manager docker_compose needs compose_file"
        if self.manager == "supervisor" and not self.supervisorctl:
            return "manager supervisor needs supervisorctl (its argv prefix)"
        return None

    def argv(self) -> list[str]:
        """The command that restarts the app."""
        if self.manager == "supervisor":
            return [*self.supervisorctl, "restart", self.service]
        if self.manager == "systemd":
            return ["systemctl", "restart", self.service]
        if self.manager == "docker_compose":
            return ["docker", "compose", "-f", self.compose_file, "up", "-d", "--force-recreate", self.service]
        return list(self.command)


def start_in_background(argv: Sequence[str], log_path: str) -> int:
    """Start ``argv`` in its own session (it outlives the caller), output to ``log_path``; its PID."""
    fd = os.open(log_path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True)
    except OSError as exc:
        raise RestartError(f"cannot start {' '.join(argv)}: {exc}") from exc
    finally:
        os.close(fd)
    return child.pid


def run_in_foreground(argv: Sequence[str], timeout_s: float) -> dict[str, Any]:
    """Run ``argv`` to its end (at most ``timeout_s``); its exit status and output, or RestartError naming them."""
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RestartError(f"{' '.join(argv)} did not end within {timeout_s:g} s") from exc
    except OSError as exc:
        raise RestartError(f"cannot run {' '.join(argv)}: {exc}") from exc
    output = (done.stdout + done.stderr).strip()[-OUTPUT_TAIL:]
    if done.returncode != 0:
        raise RestartError(f"{' '.join(argv)} failed with exit status {done.returncode}: {output or '(no output)'}")
    return {"rc": done.returncode, "output": output}
