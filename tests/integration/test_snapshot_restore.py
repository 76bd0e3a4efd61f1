"""Snapshot -> restore against real Chroma servers."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chroma_runbook.snapshot.manifest import SnapshotError, looks_complete, verify_snapshot
from chroma_runbook.snapshot.restore import RestoreRefused, restore_snapshot
from chroma_runbook.snapshot.snapshot import SnapshotRefused, plan_snapshot, take_snapshot

from snapshot_data import SPECS, dump, populate

REPO = Path(__file__).resolve().parents[2]


def test_round_trip_is_bit_exact(chroma_pair, tmp_path):
    source, target = chroma_pair
    populate(source.client())
    dest = tmp_path / "snaps" / "s1"
    result = take_snapshot(source.client(), dest, page_size=128, server_label=source.url)
    assert result.changed and result.total_records == sum(s["n"] for s in SPECS)
    assert result.collections == {s["name"]: s["n"] for s in SPECS}
    assert result.total_bytes > sum(s["n"] for s in SPECS) * 32 * 4

    # the snapshot's embedding files are bit-exact copies of what the source serves
    manifest = json.loads((dest / "manifest.json").read_text())
    served = dump(source.client())
    for entry in manifest["collections"]:
        raw = np.fromfile(dest / entry["files"]["embeddings"], dtype="<f4").reshape(entry["count"], entry["dimension"])
        ids = [json.loads(line)["id"] for line in (dest / entry["files"]["records"]).read_text().splitlines()]
        order = np.argsort(ids)
        assert raw[order].tobytes() == served[entry["name"]]["embeddings"].tobytes(), entry["name"]

    restored = restore_snapshot(target.client(), dest, batch_size=200)
    assert restored.restored == result.collections
    before, after = dump(source.client()), dump(target.client())
    assert set(before) == set(after)
    for name, src in before.items():
        dst = after[name]
        assert src["ids"] == dst["ids"], name
        assert src["documents"] == dst["documents"], name
        assert src["metadatas"] == dst["metadatas"], name
        if name == "snap_cosine":
            # measured Chroma fact: cosine collections re-store vectors with ~1 ulp drift (DESIGN.md)
            drift = np.abs(src["embeddings"] - dst["embeddings"]).max()
            assert drift <= 1e-6 * np.abs(src["embeddings"]).max(), drift
        else:
            assert src["embeddings"].tobytes() == dst["embeddings"].tobytes(), f"{name} vectors not bit-exact"
        assert src["metadata"] == dst["metadata"], name
        assert src["hnsw"] == dst["hnsw"], name
    assert after["snap_cosine"]["hnsw"]["ef_construction"] == 200
    assert after["snap_l2"]["hnsw"]["space"] == "l2"
    assert after["snap_ip"]["hnsw"]["space"] == "ip"


def test_snapshot_files_are_private_and_manifest_complete(chroma_factory, tmp_path):
    source = chroma_factory("source")
    populate(source.client(), SPECS[:1])
    dest = tmp_path / "s"
    take_snapshot(source.client(), dest, server_label=source.url)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    for path in dest.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["server"] == source.url
    assert manifest["chromadb_version"] == "1.5.9"
    coll = manifest["collections"][0]
    assert (coll["count"], coll["dimension"], coll["space"]) == (700, 32, "cosine")
    assert set(manifest["files"]) == {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()} - {
        "manifest.json", "manifest.json.sha256"}
    assert verify_snapshot(dest).files_checked == 3
    # second run: idempotent, nothing rewritten
    mtime = (dest / "manifest.json").stat().st_mtime_ns
    again = take_snapshot(source.client(), dest)
    assert not again.changed and (dest / "manifest.json").stat().st_mtime_ns == mtime


def test_check_mode_plan_writes_nothing(chroma_factory, tmp_path):
    source = chroma_factory("source")
    populate(source.client(), SPECS[1:2])
    dest = tmp_path / "never"
    plan = plan_snapshot(source.client(), dest, None)
    assert plan.changed and plan.collections == {"snap_l2": 450} and plan.total_bytes == 450 * 32 * 4
    assert not dest.exists()
    assert not any(p.name.startswith(".never") for p in tmp_path.iterdir())


def test_unknown_collection_is_refused(chroma_factory, tmp_path):
    source = chroma_factory("source")
    with pytest.raises(SnapshotRefused, match="nope"):
        take_snapshot(source.client(), tmp_path / "s", names=["nope"])
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("victim", ["collections/snap_l2/embeddings.f32", "collections/snap_l2/records.jsonl",
                                    "collections/snap_ip/collection.json", "manifest.json"])
def test_one_changed_byte_is_refused_and_nothing_written(chroma_pair, tmp_path, victim):
    source, target = chroma_pair
    populate(source.client())
    dest = tmp_path / "s"
    take_snapshot(source.client(), dest)
    path = dest / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match=victim.replace(".", r"\.")):
        restore_snapshot(target.client(), dest)
    assert target.client().list_collections() == []


def test_existing_collection_needs_replace(chroma_pair, tmp_path):
    source, target = chroma_pair
    populate(source.client())
    dest = tmp_path / "s"
    take_snapshot(source.client(), dest)
    target.client().create_collection("snap_l2", embedding_function=None)
    with pytest.raises(RestoreRefused, match=r"snap_l2.*replace=true"):
        restore_snapshot(target.client(), dest)
    assert [c.name for c in target.client().list_collections()] == ["snap_l2"]
    check = restore_snapshot(target.client(), dest, replace=True, check_mode=True)
    assert check.replaced == ["snap_l2"] and target.client().get_collection("snap_l2").count() == 0
    done = restore_snapshot(target.client(), dest, replace=True, names=["snap_l2", "snap_ip"])
    assert done.restored == {"snap_l2": 450, "snap_ip": 300}
    assert sorted(c.name for c in target.client().list_collections()) == ["snap_ip", "snap_l2"]
    assert target.client().get_collection("snap_l2").count() == 450


CRASHER = """
import sys, time
sys.path.insert(0, {mu!r})
from chroma_runbook.io.connection import connect
from chroma_runbook.snapshot import snapshot
real = snapshot.iter_pages
def slow(collection, page_size):
    for page in real(collection, page_size):
        print("page", flush=True)
        time.sleep(0.3)
        yield page
snapshot.iter_pages = slow
snapshot.take_snapshot(connect({{"url": {url!r}}}), __import__("pathlib").Path({dest!r}), page_size=50)
"""


def test_killed_snapshot_leaves_nothing_valid(chroma_factory, tmp_path):
    source = chroma_factory("source")
    populate(source.client())
    dest = tmp_path / "snaps" / "killed"
    code = CRASHER.format(mu=str(REPO / "module_utils"), url=source.url, dest=str(dest))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    for _ in range(4):
        assert proc.stdout.readline().startswith(b"page")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert not dest.exists()
    leftovers = list((tmp_path / "snaps").iterdir())
    assert leftovers and all(p.name.startswith(".killed.tmp-") for p in leftovers)
    assert not any(looks_complete(p) for p in leftovers)
    with pytest.raises(SnapshotError, match="does not exist"):
        verify_snapshot(dest)


def test_failure_mid_snapshot_cleans_up(chroma_factory, tmp_path, monkeypatch):
    from chroma_runbook.snapshot import snapshot

    source = chroma_factory("source")
    populate(source.client())
    real = snapshot.iter_pages
    calls = {"n": 0}

    def failing(collection, page_size):
        for page in real(collection, page_size):
            calls["n"] += 1
            if calls["n"] == 5:
                raise OSError("disk full (injected)")
            yield page

    monkeypatch.setattr(snapshot, "iter_pages", failing)
    with pytest.raises(OSError, match="injected"):
        take_snapshot(source.client(), tmp_path / "s", page_size=100)
    assert not any(p.name.startswith(".s.tmp-") for p in tmp_path.iterdir())
    assert not (tmp_path / "s").exists()


def test_awkward_data_round_trip(chroma_pair, tmp_path):
    """Unicode, None documents and metadatas, list metadata, ids with spaces/slashes, an empty collection."""
    from test_migrate_copy import load_awkward

    source, target = chroma_pair
    counts = load_awkward(source.client())
    dest = tmp_path / "awk"
    result = take_snapshot(source.client(), dest, page_size=64)
    assert result.collections == counts
    restored = restore_snapshot(target.client(), dest, batch_size=100)
    assert restored.restored == counts
    before, after = dump(source.client()), dump(target.client())
    for name in counts:
        src, dst = before[name], after[name]
        assert (src["ids"], src["documents"], src["metadatas"]) == (dst["ids"], dst["documents"], dst["metadatas"])
        assert src["metadata"] == dst["metadata"] and src["hnsw"] == dst["hnsw"], name
        assert np.allclose(src["embeddings"], dst["embeddings"], rtol=1e-6, atol=1e-6), name
