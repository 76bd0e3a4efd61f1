"""The lab's processes: supervisord (and its programs), nginx, and who holds the lab's ports.

Everything is found through the lab's own pid files and socket, never by
process name, so several labs (and other people's servers) can run side by side.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import psutil

from .layout import LabLayout

NGINX = os.environ.get("LAB_NGINX", "/usr/sbin/nginx")


class LabError(RuntimeError):
    """Something the lab cannot do; the message says what and what to do."""


def read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: Optional[int], marker: str) -> Optional[psutil.Process]:
    """The process ``pid`` if it runs and its command line mentions ``marker``."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc if marker in " ".join(proc.cmdline()) else None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        return False
    except psutil.NoSuchProcess:
        pass
    return True


# supervisord ---------------------------------------------------------------

def supervisord_process(layout: LabLayout) -> Optional[psutil.Process]:
    """This lab's supervisord, if it runs."""
    return _alive(read_pid(layout.supervisord_pidfile), str(layout.supervisord_conf))


class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's unix socket."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__()
        self.socket_path = socket_path

    def make_connection(self, host: Any) -> Any:
        path = str(self.socket_path)

        class Conn(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(30)
                self.sock.connect(path)

        return Conn("localhost")


def supervisor_rpc(layout: LabLayout) -> Any:
    """An XML-RPC proxy to this lab's supervisord (``.supervisor.*`` methods)."""
    return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_UnixTransport(layout.supervisor_socket))


def program_states(layout: LabLayout) -> dict[str, dict[str, Any]]:
    """supervisord's view of each program (statename, pid), empty when it does not run."""
    if supervisord_process(layout) is None:
        return {}
    try:
        infos = supervisor_rpc(layout).supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error):
        return {}
    return {info["name"]: info for info in infos}


def start_supervisord(layout: LabLayout, venv_bin: Path, timeout: float = 30.0) -> int:
    """Start supervisord (it daemonizes and autostarts the programs); returns its pid."""
    layout.supervisor_socket.unlink(missing_ok=True)
    layout.supervisord_pidfile.unlink(missing_ok=True)
    log = layout.logs / "supervisord.start.log"
    with open(log, "wb") as out:
        done = subprocess.run([str(venv_bin / "supervisord"), "-c", str(layout.supervisord_conf)],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise LabError(f"supervisord -c {layout.supervisord_conf} failed ({done.returncode}): "
                       f"{log.read_text()[-1500:]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = supervisord_process(layout)
        if proc is not None and layout.supervisor_socket.exists():
            try:
                supervisor_rpc(layout).supervisor.getState()
                return proc.pid
            except (OSError, xmlrpc.client.Error):
                pass
        time.sleep(0.1)
    raise LabError(f"supervisord did not come up within {timeout:.0f}s; see {layout.logs}/supervisord.log")


def start_missing_programs(layout: LabLayout) -> list[str]:
    """Start every program supervisord has but does not run; returns their names."""
    rpc = supervisor_rpc(layout)
    started = []
    for name, info in program_states(layout).items():
        if info["statename"] in ("RUNNING", "STARTING"):
            continue
        try:
            rpc.supervisor.startProcess(name, False)
        except xmlrpc.client.Fault as exc:
            if "ALREADY_STARTED" not in exc.faultString:
                raise LabError(f"supervisorctl start {name} failed: {exc.faultString}") from exc
        started.append(name)
    return started


def stop_supervisord(layout: LabLayout, timeout: float = 60.0) -> Optional[int]:
    """Shut supervisord down (it stops its programs first); returns the pid it had."""
    proc = supervisord_process(layout)
    if proc is None:
        layout.supervisor_socket.unlink(missing_ok=True)
        return None
    try:
        supervisor_rpc(layout).supervisor.shutdown()
    except (OSError, xmlrpc.client.Error):
        proc.send_signal(signal.SIGTERM)
    if not _wait_gone(proc, timeout):
        raise LabError(f"supervisord (pid {proc.pid}) did not stop within {timeout:.0f}s")
    return proc.pid


# nginx ---------------------------------------------------------------------

def nginx_process(layout: LabLayout) -> Optional[psutil.Process]:
    """This lab's nginx master, if it runs."""
    return _alive(read_pid(layout.nginx_pidfile), str(layout.nginx_conf))


def _nginx_cmd(layout: LabLayout, *extra: str) -> list[str]:
    return [NGINX, "-c", str(layout.nginx_conf), "-p", f"{layout.nginx_prefix}/",
            "-e", str(layout.nginx_logs / "error.log"), *extra]


def start_nginx(layout: LabLayout, timeout: float = 10.0) -> int:
    """Check the config, start nginx (it daemonizes); returns the master's pid."""
    test = subprocess.run(_nginx_cmd(layout, "-t", "-q"), capture_output=True, text=True, check=False)
    if test.returncode != 0:
        raise LabError(f"nginx -t -c {layout.nginx_conf} failed: {test.stderr.strip()}")
    layout.nginx_pidfile.unlink(missing_ok=True)
    log = layout.nginx_logs / "start.log"
    with open(log, "wb") as out:
        done = subprocess.run(_nginx_cmd(layout), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              check=False)
    if done.returncode != 0:
        raise LabError(f"nginx -c {layout.nginx_conf} failed ({done.returncode}): {log.read_text()[-1500:]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = nginx_process(layout)
        if proc is not None:
            return proc.pid
        time.sleep(0.05)
    raise LabError(f"nginx wrote no live pid to {layout.nginx_pidfile} within {timeout:.0f}s")


def stop_nginx(layout: LabLayout, timeout: float = 20.0) -> Optional[int]:
    """Graceful stop (SIGQUIT to the pid in the lab's pid file); returns that pid."""
    proc = nginx_process(layout)
    if proc is None:
        return None
    proc.send_signal(signal.SIGQUIT)
    if not _wait_gone(proc, timeout):
        proc.send_signal(signal.SIGTERM)
        if not _wait_gone(proc, 5):
            raise LabError(f"nginx (pid {proc.pid}) did not stop")
    return proc.pid


# ports ---------------------------------------------------------------------

@dataclass(frozen=True)
class Listener:
    """A process listening on one of the lab's ports."""

    port: int
    component: str
    pid: Optional[int]
    command: str

    def describe(self) -> str:
        who = f"pid {self.pid} ({self.command})" if self.pid else "a process this user cannot see"
        return f"port {self.port} ({self.component}) is held by {who}"


def _command(pid: Optional[int]) -> str:
    if not pid:
        return "unknown"
    try:
        return " ".join(" ".join(psutil.Process(pid).cmdline()).split())[:200] or psutil.Process(pid).name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "unknown"


def listeners(layout: LabLayout) -> list[Listener]:
    """Every process listening on one of the lab's ports (any address)."""
    by_port = {port: name for name, port in layout.ports.items()}
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in by_port:
            found.append(Listener(conn.laddr.port, by_port[conn.laddr.port], conn.pid, _command(conn.pid)))
    return sorted(set(found), key=lambda item: item.port)


def lab_pids(layout: LabLayout) -> set[int]:
    """PIDs of this lab: supervisord, nginx master and all their descendants."""
    pids: set[int] = set()
    for proc in (supervisord_process(layout), nginx_process(layout)):
        if proc is None:
            continue
        pids.add(proc.pid)
        try:
            pids.update(child.pid for child in proc.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return pids


def is_orphan_of(layout: LabLayout, listener: Listener) -> bool:
    """A listener started by this lab whose parent is gone (its command names the lab dir)."""
    return bool(listener.pid) and str(layout.root) + "/" in listener.command


def foreign_listeners(layout: LabLayout) -> list[Listener]:
    """Listeners on the lab's ports that are not this lab's processes."""
    ours = lab_pids(layout)
    return [item for item in listeners(layout) if item.pid not in ours]


def stop_orphans(layout: LabLayout, found: list[Listener], timeout: float = 30.0) -> list[Listener]:
    """SIGTERM (then wait for) leftovers of this lab; returns those stopped."""
    stopped = []
    for item in found:
        if not is_orphan_of(layout, item):
            continue
        try:
            proc = psutil.Process(item.pid)
            proc.terminate()
            if not _wait_gone(proc, timeout):
                proc.kill()
            stopped.append(item)
        except psutil.NoSuchProcess:
            stopped.append(item)
    return stopped
