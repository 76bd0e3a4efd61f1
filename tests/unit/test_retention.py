"""Retention: old snapshots go, the newest and protected ones stay, check mode deletes nothing."""
from __future__ import annotations

import os
import time
from pathlib import Path

from chroma_runbook.snapshot.manifest import FORMAT, FORMAT_VERSION, write_manifest
from chroma_runbook.snapshot.retention import find_snapshots, plan_prune, prune

DAY = 86400.0


def make(path: Path, age_days: float, now: float) -> Path:
    path.mkdir(parents=True)
    write_manifest(path, {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "logical",
                          "snapshot_id": path.name, "created_unix": now - age_days * DAY, "files": {},
                          "collections": []})
    return path


def test_prunes_old_keeps_newest_protected_and_young(tmp_path):
    now = time.time()
    old1 = make(tmp_path / "snap-old1", 30, now)
    old2 = make(tmp_path / "snap-old2", 20, now)
    protected_run = tmp_path / "run-17"
    protected = make(protected_run / "snapshot", 25, now)   # runs dir layout: <run>/snapshot
    young = make(tmp_path / "snap-young", 2, now)
    crashed = tmp_path / ".snap-x.tmp-abc123"
    crashed.mkdir()
    os.utime(crashed, (now - 10 * DAY, now - 10 * DAY))

    check = prune(tmp_path, 7, protect=[str(protected_run)], check_mode=True, now=now)
    assert sorted(check["pruned"]) == sorted(map(str, [old1, old2, crashed]))
    assert old1.exists() and old2.exists() and crashed.exists()

    done = prune(tmp_path, 7, protect=[str(protected_run)], now=now)
    assert done["changed"] and not old1.exists() and not old2.exists() and not crashed.exists()
    assert protected.exists() and young.exists()
    assert done["kept"][str(young)] == "newest snapshot"
    assert "protected" in done["kept"][str(protected)]
    assert not prune(tmp_path, 7, protect=[str(protected_run)], now=now)["changed"]  # idempotent


def test_never_the_newest_even_when_everything_is_old(tmp_path):
    now = time.time()
    a = make(tmp_path / "a", 100, now)
    b = make(tmp_path / "b", 50, now)
    delete, kept = plan_prune(find_snapshots(tmp_path), 7, now=now)
    assert [d.path for d in delete] == [a] and kept == {str(b): "newest snapshot"}


def test_protect_by_snapshot_id(tmp_path):
    now = time.time()
    make(tmp_path / "a", 100, now)
    make(tmp_path / "b", 90, now)
    make(tmp_path / "c", 1, now)
    delete, _ = plan_prune(find_snapshots(tmp_path), 7, protect=["a"], now=now)
    assert [d.path.name for d in delete] == ["b"]


def test_tampered_manifest_counts_as_incomplete(tmp_path):
    now = time.time()
    snap = make(tmp_path / "t", 1, now)
    (snap / "manifest.json").write_text("{}")
    infos = find_snapshots(tmp_path)
    assert len(infos) == 1 and not infos[0].complete
