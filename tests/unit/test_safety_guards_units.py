"""Issue 10, the pure parts: one run-id rule, the per-target lock and its status, secret-free
descriptions, private run files whatever the umask (the playbooks' side: tests/integration/test_runbook_guards.py)."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from chroma_runbook.run import run_state as rs
from chroma_runbook.io.connection import ConnectionSpec
from chroma_runbook.io.jsonlog import RunLog
from chroma_runbook.migrate.migration_options import MigrationOptions, OptionError
from chroma_runbook.run.run_lock import lock_status, target_lock_path
from chroma_runbook.migrate.scan import RejectsWriter

MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "module_utils")
TARGET = {"url": "http://127.0.0.1:9"}  # nothing listens: the lock is taken before any connection
BAD_RUN_IDS = ["with space", "$(touch pwned)", "line\nbreak", "trailing\n", "../up", ".hidden", "latest", "", "x" * 129]

HOLD = """
import sys, time
sys.path.insert(0, {mu!r})
from chroma_runbook.io.connection import ConnectionSpec
from chroma_runbook.run.run_lock import RunLock, target_lock_path
RunLock("", "run-a", target_lock_path({lock_dir!r}, ConnectionSpec.from_dict({target!r}))).acquire()
print("held", flush=True)
time.sleep(120)
"""


def options(tmp_path: Path, run_id: str, **extra: object) -> MigrationOptions:
    return MigrationOptions(source={"url": "http://127.0.0.1:8"}, target=dict(TARGET), run_id=run_id,
                            checkpoint_dir=str(tmp_path / run_id / "checkpoint"), **extra)


@pytest.fixture
def held_by_run_a(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process (run a) holds the target's lock, as a running chroma_migrate does."""
    code = HOLD.format(mu=MODULE_UTILS, lock_dir=str(tmp_path / "locks"), target=TARGET)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


# point 7: one rule for run ids, in the engine, used by chroma_run and chroma_migrate
@pytest.mark.parametrize("bad", BAD_RUN_IDS)
def test_one_run_id_rule_refuses_before_anything_exists(tmp_path: Path, bad: str) -> None:
    with pytest.raises(rs.RunStateError, match="run_id"):
        rs.validate_run_id(bad)
    if bad:
        with pytest.raises(rs.RunStateError, match="run_id"):
            rs.open_run(tmp_path / "runs", bad)
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
        with pytest.raises(OptionError, match="run_id"):
            options(tmp_path, bad).validate()
    assert rs.validate_run_id("20261121T170102Z-3f2a") == "20261121T170102Z-3f2a"


# point 7: what the preflight's dry run (check_scope=options) refuses before the freeze, without reading anything
@pytest.mark.parametrize("bad,message", [
    ({"schema": {"fields": [{"name": "source", "type": "strng"}]}}, "type must be one of"),
    ({"routing": [{"name": "r", "target": "openwebui_core", "match": {"document_regex": "(unclosed"}}]}, "document_regex"),
    ({"check_scope": "everything"}, "check_scope"),
])
def test_option_errors_are_found_without_reading_the_source(tmp_path: Path, bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        options(tmp_path, "r1", **bad).validate()


# point 6: the lock is per target, not per run directory (the run itself: tests/integration/test_runbook_guards.py)
def test_two_runs_against_one_target_share_one_lock_file(tmp_path: Path) -> None:
    run_a = options(tmp_path, "run-a", lock_dir=str(tmp_path / "locks")).validate()
    run_b = options(tmp_path, "run-b", lock_dir=str(tmp_path / "locks")).validate()
    assert run_a.checkpoint_dir != run_b.checkpoint_dir and run_a.lock_path == run_b.lock_path
    assert run_a.lock_path.startswith(str(tmp_path / "locks"))
    # credentials in the URL do not make it another target; another database does
    same = ConnectionSpec.from_dict({"url": "http://user:pw@127.0.0.1:9/"})
    assert target_lock_path("/l", same) == target_lock_path("/l", ConnectionSpec.from_dict(TARGET))
    other = ConnectionSpec.from_dict(dict(TARGET, database="other"))
    assert target_lock_path("/l", other) != target_lock_path("/l", same)


# point 2: the lock's status, tried without blocking, names the holder
def test_lock_status_names_the_live_holder(tmp_path: Path, held_by_run_a: subprocess.Popen[str]) -> None:
    path = target_lock_path(str(tmp_path / "locks"), ConnectionSpec.from_dict(TARGET))
    status = lock_status(path)
    assert status["held"] and status["holder"]["pid"] == held_by_run_a.pid
    assert status["holder"]["host"] == socket.gethostname() and status["holder"]["run_id"] == "run-a"
    held_by_run_a.kill()
    held_by_run_a.wait()
    assert not lock_status(path)["held"]  # the kernel dropped a dead holder's lock
    assert lock_status(str(tmp_path / "none.lock")) == {"path": str(tmp_path / "none.lock"), "held": False, "holder": {}}


# point 10: a URL's user:password never reaches a description, a log line or an error
def test_describe_masks_the_password_of_a_url() -> None:
    spec = ConnectionSpec.from_dict({"url": "http://admin:s3cr3t@chroma.example:8000", "headers": {"X-Token": "tok"}})
    assert spec.describe() == "http://***@chroma.example:8000"
    url, headers = spec.request_parts()
    assert url == "http://chroma.example:8000" and headers["Authorization"].startswith("Basic ") and headers["X-Token"] == "tok"
    with pytest.raises(ValueError) as err:
        ConnectionSpec.from_dict({"url": "ftp://admin:s3cr3t@chroma.example"})
    assert "s3cr3t" not in str(err.value)


# point 9: run directories 0700, state, logs and rejects 0600, whatever the umask
def test_run_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        opened = rs.open_run(tmp_path / "runs", "r1")
        rs.append_event(opened.paths, "hello")
        rs.write_json_if_changed(opened.paths.run_dir / "reports" / "summary.json", {"a": 1})
        log = RunLog(str(opened.paths.run_dir / "migrate.log.jsonl"), "r1")
        log.event("x")
        log.close()
        rejects = RejectsWriter(str(opened.paths.run_dir / "rejects.jsonl"))
        rejects.close()
    finally:
        os.umask(old)
    run_dir = opened.paths.run_dir
    for directory in [run_dir] + [run_dir / sub for sub in rs.SUBDIRS]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for name in ["state.json", "run.log.jsonl", "reports/summary.json", "migrate.log.jsonl", "rejects.jsonl"]:
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600, name
