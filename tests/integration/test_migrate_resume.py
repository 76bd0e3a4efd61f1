"""Killing the module process (SIGKILL) mid-run and resuming with the same run_id ends
exactly like an uninterrupted run; a concurrent run is refused naming the lock holder."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil
import pytest

from lab import dataset
from migrate_play import ansible_env, base_args, play_command, run_migrate, snapshot, write_play, REPO
from tests.lab_vars import group_var

SCALE = 0.3


def lab_args(source_url: str, target_url: str, ck: Path, run_id: str) -> dict[str, Any]:
    return base_args(source_url, target_url, ck, routing=group_var("routing.yml", "chroma_routing"),
                     schema=group_var("schema_profile.yml", "chroma_schema_profile"), batch_size=40, run_id=run_id)


def start_play(workdir: Path, args: dict[str, Any], name: str) -> tuple[subprocess.Popen, Path]:
    play, out = write_play(workdir, args, name)
    proc = subprocess.Popen(play_command(play), env=ansible_env(), cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, out


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def module_process(ck: Path, run_id: str, playbook: subprocess.Popen) -> psutil.Process:
    """The process running chroma_migrate for ``run_id``: the lock holder, a child of ``playbook`` (not the
    playbook itself) - the module's own process, or the ansible worker that runs it in process (the
    controller's action plugin)."""
    holder = json.loads((ck / "migrate.lock").read_text())
    assert holder["run_id"] == run_id
    proc = psutil.Process(holder["pid"])
    assert proc.pid != playbook.pid and playbook.pid in [p.pid for p in proc.parents()], proc.cmdline()
    return proc


def assert_same_target(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for name in want:
        assert got[name]["metadata"] == want[name]["metadata"] and got[name]["hnsw"] == want[name]["hnsw"]
        assert got[name]["rows"].keys() == want[name]["rows"].keys(), name
        for rid, (doc, meta, emb) in want[name]["rows"].items():
            gdoc, gmeta, gemb = got[name]["rows"][rid]
            assert (gdoc, gmeta) == (doc, meta), (name, rid)
            assert np.allclose(np.frombuffer(gemb, np.float32), np.frombuffer(emb, np.float32), rtol=0, atol=1e-6)


@pytest.fixture
def lab_servers(chroma_factory):
    source, target, reference = chroma_factory("source"), chroma_factory("target"), chroma_factory("reference")
    dataset.load(source.url, "legacy", SCALE, client=source.client())
    return source, target, reference


@pytest.mark.parametrize("kill_when", ["export", "import"])
def test_resume_after_sigkill_equals_uninterrupted_run(lab_servers, tmp_path: Path, kill_when: str) -> None:
    source, target, reference = lab_servers
    rc, ref, out = run_migrate(tmp_path, lab_args(source.url, reference.url, tmp_path / "ck-ref", "ref"), name="ref")
    assert rc == 0, out

    ck = tmp_path / "ck"
    args = dict(lab_args(source.url, target.url, ck, "killme"), writers=2)  # out-of-order acks too
    proc, _ = start_play(tmp_path, args, "first")
    ckpt_file = ck / "killme.checkpoint.json"
    if kill_when == "export":
        wait_for(lambda: read_checkpoint(ckpt_file).get("phase") == "export", 120, "the export phase")
    else:
        wait_for(lambda: read_checkpoint(ckpt_file).get("last_batch_index", -1) >= 10, 300, "10 imported batches")
    victim = module_process(ck, "killme", proc)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    state = read_checkpoint(ckpt_file)
    assert state["phase"] != "completed"
    partial = sum(c.count() for c in target.client().list_collections())
    if kill_when == "import":
        assert 0 < partial < ref["imported"], "the kill did not land mid-import"

    rc, res, out = run_migrate(tmp_path, args, name="resume")
    assert rc == 0, out
    assert res["attempts"] == 2 and res["verification"]["passed"] is True
    assert res["imported"] == ref["imported"] and res["targets"].keys() == ref["targets"].keys()
    if kill_when == "import":
        assert res["phases"]["import"]["skipped_batches"] >= 10
        # killed after the validation pass: its spool is reused; killed while it still ran (the import
        # overlaps it): the source is read again and the acknowledged batches are skipped all the same
        assert res["phases"]["export"].get("reused_spool", False) is bool(state.get("spool_complete"))
    assert_same_target(snapshot(target.client()), snapshot(reference.client()))
    assert sorted(res["created_collections"]) == sorted(ref["created_collections"])


def test_lock_refuses_a_concurrent_run_naming_the_holder(lab_servers, tmp_path: Path) -> None:
    source, target, _ = lab_servers
    ck = tmp_path / "ck"
    args = dict(lab_args(source.url, target.url, ck, "first"), batch_size=5)  # slow enough to overlap
    proc, out_file = start_play(tmp_path, args, "first")
    ckpt_file = ck / "first.checkpoint.json"
    wait_for(lambda: read_checkpoint(ckpt_file).get("last_batch_index", -1) >= 1, 300, "the first run to import")
    holder = module_process(ck, "first", proc)

    rc, res, out = run_migrate(tmp_path, dict(args, run_id="second"), name="second")
    assert rc != 0
    assert f"PID {holder.pid}" in res["msg"] and "run_id first" in res["msg"], res["msg"]
    assert holder.is_running()

    rc, res, out = run_migrate(tmp_path, args, check=True, name="dry-while-running")
    assert rc != 0 and f"PID {holder.pid}" in res["msg"], res.get("msg")
    assert holder.is_running(), "the first run ended before the dry run: nothing was proven"

    proc.wait(timeout=600)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    first = json.loads(out_file.read_text())
    assert first["verification"]["passed"] is True
    assert not os.path.getsize(ck / "migrate.lock"), "the lock file still names a holder"
