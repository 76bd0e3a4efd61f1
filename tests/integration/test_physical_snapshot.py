"""Physical snapshots of a persist directory: refused while the server runs, exact when stopped."""
from __future__ import annotations

from pathlib import Path

import pytest

from chroma_runbook.snapshot.manifest import SnapshotError, verify_snapshot
from chroma_runbook.snapshot.physical_snapshot import plan_physical_snapshot, restore_physical, take_physical_snapshot, why_busy
from chroma_runbook.snapshot.snapshot import SnapshotRefused

from snapshot_data import SPECS, dump, populate


def test_refused_while_running_then_exact_copy_when_stopped(chroma_factory, tmp_path):
    import conftest

    server = chroma_factory("phys")
    populate(server.client(), SPECS[:2])
    before = dump(server.client())
    dest = tmp_path / "snaps" / "phys1"

    # the server answers on its URL, and holds chroma.sqlite3 open: both are reasons
    reasons = why_busy(server.persist, server.url)
    assert any("answers" in r for r in reasons) and any("chroma.sqlite3" in r for r in reasons)
    with pytest.raises(SnapshotRefused, match="while the server uses it"):
        take_physical_snapshot(server.persist, dest, url=server.url)
    # without the URL the open-file check alone refuses it
    with pytest.raises(SnapshotRefused, match=r"pid \d+ .*chroma.sqlite3"):
        take_physical_snapshot(server.persist, dest)
    with pytest.raises(SnapshotRefused):
        plan_physical_snapshot(server.persist, dest, server.url)
    assert not dest.parent.exists()  # nothing written at all, not even the parent

    server.stop()
    plan = plan_physical_snapshot(server.persist, dest, server.url)
    assert plan.changed and plan.total_bytes > 0 and not dest.exists()
    result = take_physical_snapshot(server.persist, dest, url=server.url)
    assert result.changed and verify_snapshot(dest).kind == "physical"
    assert not take_physical_snapshot(server.persist, dest, url=server.url).changed  # idempotent

    # restore into a fresh persist directory and serve it: same data
    restored_dir = tmp_path / "restored"
    out = restore_physical(dest, restored_dir, check_mode=True)
    assert out.files == result_files(dest) and not restored_dir.exists()
    restore_physical(dest, restored_dir)
    again = conftest.ChromaServer(restored_dir, conftest.free_port(), tmp_path / "again.log").start()
    try:
        after = dump(again.client())
        # refuse to restore over a directory the running server holds
        with pytest.raises(SnapshotRefused, match="replace"):
            restore_physical(dest, restored_dir, url=again.url)
    finally:
        again.stop()
    for name, src in before.items():
        assert src["ids"] == after[name]["ids"] and src["embeddings"].tobytes() == after[name]["embeddings"].tobytes()
        assert src["metadatas"] == after[name]["metadatas"] and src["hnsw"] == after[name]["hnsw"]

    # a second restore over the stopped directory keeps the previous one aside
    second = restore_physical(dest, restored_dir)
    assert second.previous_moved_to and Path(second.previous_moved_to).is_dir()


def result_files(dest: Path) -> int:
    return verify_snapshot(dest).files_checked


def test_tampered_physical_snapshot_refused(chroma_factory, tmp_path):
    server = chroma_factory("phys")
    populate(server.client(), SPECS[2:])
    server.stop()
    dest = tmp_path / "p"
    take_physical_snapshot(server.persist, dest)
    sqlite = dest / "data" / "chroma.sqlite3"
    data = bytearray(sqlite.read_bytes())
    data[-100] ^= 0xFF
    sqlite.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="data/chroma.sqlite3"):
        restore_physical(dest, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_not_a_persist_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotRefused, match="not a Chroma persist directory"):
        take_physical_snapshot(tmp_path / "empty", tmp_path / "s")
