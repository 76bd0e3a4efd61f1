"""chroma_app_restart through real ansible-playbook: a background restart returns at once and
leaves the command running in its own session with its output in the log; a foreground one waits
and fails naming the command, its exit status and its output; check mode runs nothing; a spec
that cannot restart anything is refused before anything runs. (The supervisor restart of the lab's
apps is proven by every cutover test: test_runbook_migrate, test_multihost, molecule.)"""
from __future__ import annotations

import os
import time
from pathlib import Path

from module_play import run_module


def _wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_a_background_restart_returns_at_once_and_runs_on_in_its_own_session(tmp_path: Path) -> None:
    marker, log = tmp_path / "restarted", tmp_path / "restart.log"
    script = f"sleep 5; echo restarting; echo $$ $(ps -o sid= -p $$) > {marker}"
    rc, result, out = run_module(tmp_path, "chroma_app_restart",
                                 {"manager": "command", "command": ["sh", "-c", script], "log_path": str(log)})
    assert rc == 0, out[-2000:]
    assert result["changed"] and result["background"] and result["log_path"] == str(log)
    assert not marker.exists(), "the module waited for the restart command"
    pid, sid = _wait_for(marker).split()
    assert int(pid) == result["pid"] and int(sid) == result["pid"]  # a session of its own: it outlives the module
    assert "restarting" in _wait_for(log) and (log.stat().st_mode & 0o077) == 0


def test_a_foreground_restart_that_fails_names_the_command_its_status_and_output(tmp_path: Path) -> None:
    rc, result, out = run_module(tmp_path, "chroma_app_restart",
                                 {"manager": "command", "command": ["sh", "-c", "echo no such program >&2; exit 3"],
                                  "background": False})
    assert rc != 0 and result["failed"]
    assert "exit status 3" in result["msg"] and "no such program" in result["msg"], result["msg"]
    rc, result, out = run_module(tmp_path, "chroma_app_restart",
                                 {"manager": "command", "command": ["true"], "background": False}, name="ok")
    assert rc == 0 and result["rc"] == 0 and result["changed"], out[-2000:]


def test_check_mode_runs_nothing_and_says_what_it_would_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    rc, result, out = run_module(tmp_path, "chroma_app_restart",
                                 {"manager": "command", "command": ["touch", str(marker)]}, check=True)
    assert rc == 0 and result["changed"] and result["argv"] == ["touch", str(marker)], out[-2000:]
    time.sleep(0.5)
    assert not marker.exists()
    rc, result, out = run_module(tmp_path, "chroma_app_restart",
                                 {"manager": "supervisor", "service": "app_x", "supervisorctl": ["supervisorctl", "-c", "/x.conf"]},
                                 check=True, name="supervisor")
    assert result["argv"] == ["supervisorctl", "-c", "/x.conf", "restart", "app_x"], result


def test_a_spec_that_cannot_restart_anything_is_refused(tmp_path: Path) -> None:
    rc, result, out = run_module(tmp_path, "chroma_app_restart", {"manager": "docker_compose", "service": "app"})
    assert rc != 0 and "needs compose_file" in result["msg"], result
    rc, result, out = run_module(tmp_path, "chroma_app_restart", {"manager": "systemd"}, name="nosvc")
    assert rc != 0 and "needs service" in result["msg"], result
    assert not [p for p in os.listdir(tmp_path) if p.startswith("chroma-runbook-restart")]
