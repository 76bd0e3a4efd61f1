"""Where everything of one lab lives: its directory, ports, files and programs.

A lab is fully described by its directory and its port base (CONTRACTS.md
"The lab"): ``base+0`` nginx, ``base+1`` source, ``base+2`` target,
``base+10`` app_openwebui, ``base+11`` app_chatbot.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import REPO

DEFAULT_DIR = REPO / ".lab"
DEFAULT_PORT_BASE = 8000
PORT_SPAN = 12  # base .. base+11 belong to the lab
HOST = "127.0.0.1"
CHROMA_PROGRAMS = ("source_chroma", "target_chroma")
APP_PROGRAMS = ("app_openwebui", "app_chatbot")
PROGRAMS = CHROMA_PROGRAMS + APP_PROGRAMS
# How each demo app reads its Chroma settings (lab/demo_app.py --style).
APP_STYLES = {"app_openwebui": "openwebui", "app_chatbot": "url"}
PORT_OFFSETS = {"nginx": 0, "source_chroma": 1, "target_chroma": 2, "app_openwebui": 10, "app_chatbot": 11}
UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


class LayoutError(ValueError):
    """A lab directory or port base that cannot work."""


class SupervisorFiles:
    """Where one supervisord keeps its config, socket, pid file and logs: under ``root``."""

    root: Path

    @property
    def supervisord_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.root / "supervisor.sock"

    @property
    def supervisord_pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


@dataclass(frozen=True)
class LabLayout(SupervisorFiles):
    """Paths and ports of one lab (nothing here touches the disk)."""

    root: Path
    port_base: int
    source: str = ""   # "" = the project's chromadb; "0.4.24"/"0.5.23" = a legacy source (lab/legacy.py)

    @classmethod
    def create(cls, root: Path | str = DEFAULT_DIR, port_base: int = DEFAULT_PORT_BASE,
               source: str = "") -> "LabLayout":
        """Validate ``root`` (--dir), ``port_base`` (--port-base) and ``source`` (--source)."""
        if not 1024 <= port_base <= 65535 - PORT_SPAN:
            raise LayoutError(f"--port-base must be within 1024..{65535 - PORT_SPAN}, got {port_base}")
        from .legacy import VERSIONS

        if source and source not in VERSIONS:
            raise LayoutError(f"--source must be one of {', '.join(VERSIONS)} (or empty), got {source!r}")
        layout = cls(Path(root).expanduser().resolve(), port_base, source)
        if len(str(layout.supervisor_socket)) > UNIX_SOCKET_MAX:
            raise LayoutError(f"--dir {layout.root} is too long for a unix socket path "
                              f"({layout.supervisor_socket}); use a shorter directory")
        return layout

    # ports and URLs
    def port(self, component: str) -> int:
        return self.port_base + PORT_OFFSETS[component]

    @property
    def ports(self) -> dict[str, int]:
        return {name: self.port(name) for name in PORT_OFFSETS}

    def url(self, component: str) -> str:
        return f"http://{HOST}:{self.port(component)}"

    @property
    def front_door_url(self) -> str:
        return self.url("nginx")

    def data_dir(self, program: str) -> Path:
        return self.root / "data" / program.removesuffix("_chroma")

    def app_env(self, app: str) -> Path:
        return self.root / "apps" / app / "app.env"

    # nginx
    @property
    def nginx_prefix(self) -> Path:
        return self.root / "nginx"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx_prefix / "nginx.conf"

    @property
    def nginx_pidfile(self) -> Path:
        return self.nginx_prefix / "nginx.pid"

    @property
    def nginx_logs(self) -> Path:
        return self.nginx_prefix / "logs"

    @property
    def nginx_tmp(self) -> Path:
        return self.nginx_prefix / "tmp"

    @property
    def http_d(self) -> Path:
        return self.nginx_prefix / "http.d"

    @property
    def server_d(self) -> Path:
        return self.nginx_prefix / "server.d"

    @property
    def upstream_conf(self) -> Path:
        return self.http_d / "upstream.conf"

    @property
    def lab_json(self) -> Path:
        return self.root / "lab.json"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def directories(self) -> list[Path]:
        """Every directory ``up`` creates."""
        dirs = [self.root, self.logs, self.runs, self.nginx_logs, self.nginx_tmp, self.http_d, self.server_d]
        dirs += [self.data_dir(p) for p in CHROMA_PROGRAMS]
        dirs += [self.app_env(a).parent for a in APP_PROGRAMS]
        return dirs

    def program_command(self, program: str, venv_bin: Path) -> str:
        """The command supervisord runs for ``program``."""
        port = self.port(program)
        if program in CHROMA_PROGRAMS:
            chroma_bin = venv_bin
            if program == "source_chroma" and self.source:
                from .legacy import bin_dir

                chroma_bin = bin_dir(self.source)
            return f"{chroma_bin / 'chroma'} run --path {self.data_dir(program)} --host {HOST} --port {port}"
        return (f"{venv_bin / 'python'} -m lab.demo_app --name {program} --config {self.app_env(program)} "
                f"--style {APP_STYLES[program]} --host {HOST} --port {port}")

    def describe(self, dataset: dict[str, Any]) -> dict[str, Any]:
        """The lab's map for lab.json (ports, URLs, files; no PIDs)."""
        return {
            "dir": str(self.root),
            "port_base": self.port_base,
            "source_version": self.source,
            "repo": str(REPO),
            "ports": self.ports,
            "urls": {"front_door": self.front_door_url, "source": self.url("source_chroma"),
                     "target": self.url("target_chroma"),
                     **{app: self.url(app) for app in APP_PROGRAMS}},
            "supervisor": {"conf": str(self.supervisord_conf), "socket": str(self.supervisor_socket),
                           "pidfile": str(self.supervisord_pidfile), "programs": list(PROGRAMS),
                           "ctl": f"supervisorctl -c {self.supervisord_conf}"},
            "nginx": {"conf": str(self.nginx_conf), "prefix": str(self.nginx_prefix) + "/",
                      "pidfile": str(self.nginx_pidfile), "http_d": str(self.http_d),
                      "server_d": str(self.server_d), "upstream_conf": str(self.upstream_conf),
                      "upstream": "chroma_front", "logs": str(self.nginx_logs),
                      "reload": f"nginx -s reload -c {self.nginx_conf} -p {self.nginx_prefix}/"},
            "apps": {app: {"env": str(self.app_env(app)), "url": self.url(app), "program": app}
                     for app in APP_PROGRAMS},
            "data": {p: str(self.data_dir(p)) for p in CHROMA_PROGRAMS},
            "logs": str(self.logs),
            "runs": str(self.runs),
            "dataset": dataset,
        }


def venv_bin() -> Path:
    """The bin directory of the Python running the lab (the project's .venv)."""
    return Path(sys.executable).parent
