"""Under the freeze the delta reads the source's records from the run's snapshot (chroma_migrate
source_snapshot), the frozen source's verified copy, instead of paging through the server again.

Proven against real servers through real ansible-playbook: a write that slips past the freeze after
the snapshot is not what the delta copies (the target equals the snapshot, the freeze moment; the
gate's drift check is what stops such a run); a snapshot that does not hold every collection the
migration reads is not used (the server is read, and the result says why); a snapshot that fails its
checksums stops the delta before it writes anything.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chroma_runbook.migrate.migration import run_migration
from chroma_runbook.snapshot.snapshot import take_snapshot
from module_play import run_module
from test_migrate_precopy import assert_equal, exact, expected_from_source, fill, options, precopy_with_writer


def _delta_args(source: Any, target: Any, ck: Path, snapshot: Path, **extra: Any) -> dict[str, Any]:
    return dict(source=source.connection, target=target.connection, checkpoint_dir=str(ck), run_id="pc",
                batch_size=40, min_valid_ratio=0.9, source_snapshot=str(snapshot), **extra)


def _precopied_and_snapshot(source: Any, target: Any, tmp_path: Path, names: Any = None) -> tuple[Path, Path]:
    """A pre-copy into staging, then a snapshot of the (frozen) source; the checkpoint dir and the snapshot."""
    fill(source.client())
    ck = tmp_path / "ck"
    run_migration(options(source, target, ck, precopy=True))
    snapshot = tmp_path / "run" / "snapshot"
    take_snapshot(source.client(), snapshot, names=names)
    return ck, snapshot


def _slip_a_write(client: Any) -> None:
    """A writer that bypassed the freeze, after the snapshot."""
    col = client.get_collection("pre_b")
    col.update(ids=["pre_b-7"], documents=["written after the snapshot"], embeddings=np.ones((1, 16), dtype=np.float32))


def test_the_delta_copies_the_snapshot_not_a_write_that_slipped_past_it(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    precopy_with_writer(source, target, ck)
    snapshot = tmp_path / "run" / "snapshot"
    take_snapshot(source.client(), snapshot)          # under the freeze: the whole source
    at_freeze = expected_from_source(source.client())
    _slip_a_write(source.client())

    rc, result, out = run_module(tmp_path, "chroma_migrate", _delta_args(source, target, ck, snapshot))
    assert rc == 0, out[-3000:]
    assert result["source_read_from"].startswith("snapshot snap-") and str(snapshot) in result["source_read_from"]
    assert result["phases"]["delta"]["replaced"] >= 40 and result["verification"]["passed"]
    assert_equal(exact(target.client()), at_freeze)   # the freeze moment, without the slipped write
    assert exact(target.client())["pre_b"]["rows"]["pre_b-7"][0] != "written after the snapshot"


def test_a_snapshot_of_some_collections_does_not_stand_for_the_whole_source(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    ck, snapshot = _precopied_and_snapshot(source, target, tmp_path, names=["pre_a"])

    rc, result, out = run_module(tmp_path, "chroma_migrate", _delta_args(source, target, ck, snapshot))
    assert rc == 0, out[-3000:]
    assert result["source_read_from"].startswith("server (") and "not every collection" in result["source_read_from"]
    # read from the server: every collection is there (read from the snapshot, pre_b would be gone)
    assert_equal(exact(target.client()), expected_from_source(source.client()))


def test_a_snapshot_that_fails_its_checksums_stops_the_delta_before_it_writes(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    ck, snapshot = _precopied_and_snapshot(source, target, tmp_path)
    vectors = snapshot / "collections" / "pre_a" / "embeddings.f32"
    data = bytearray(vectors.read_bytes())
    data[100] ^= 0x01
    vectors.write_bytes(bytes(data))
    before = {c.name: c.count() for c in target.client().list_collections()}
    source.client().get_collection("pre_a").add(ids=["late"], embeddings=np.ones((1, 16), dtype=np.float32))

    rc, result, out = run_module(tmp_path, "chroma_migrate", _delta_args(source, target, ck, snapshot))
    assert rc != 0 and result.get("failed"), out[-3000:]
    assert "cannot stand for the frozen source" in result["msg"] and "pre_a" in result["msg"], result["msg"]
    assert {c.name: c.count() for c in target.client().list_collections()} == before  # nothing written


def test_a_fingerprinted_snapshot_hands_each_record_digest_to_the_delta(chroma_pair, tmp_path: Path,
                                                                         monkeypatch) -> None:
    """The snapshot keeps the digest it computed of every record (the fingerprint's), checksummed beside the
    records: they are exactly the digests of the records the server holds and of those read back from the
    snapshot, and the delta reading the snapshot looks the transform memo up with them instead of hashing
    every record again - with the same result, the source at the freeze."""
    from chroma_runbook.io import fingerprint
    from chroma_runbook.io.paging import RECORD_DIGESTS, page_to_records
    from chroma_runbook.io.source import INCLUDE_ALL
    from chroma_runbook.migrate import transform_memo
    from chroma_runbook.snapshot.frozen_source import SnapshotSource
    from chroma_runbook.snapshot.manifest import load_manifest

    source, target = chroma_pair
    ck, snapshot = tmp_path / "ck", tmp_path / "run" / "snapshot"
    fill(source.client())
    run_migration(options(source, target, ck, precopy=True))
    take_snapshot(source.client(), snapshot, fingerprint=True)
    manifest = load_manifest(snapshot)
    frozen = SnapshotSource(snapshot)
    for entry in manifest["collections"]:
        assert entry["files"]["digests"] in manifest["files"]  # checksummed like the records
        page = frozen.get_collection(entry["name"]).get()
        kept = page.pop(RECORD_DIGESTS)
        assert kept == [fingerprint.record_digest(r) for r in page_to_records(page, entry["name"])]
        served = source.client().get_collection(entry["name"]).get(ids=page["ids"], include=INCLUDE_ALL)
        assert kept == [fingerprint.record_digest(r) for r in page_to_records(served, entry["name"])]

    hashed: list[str] = []
    real = transform_memo.record_digest
    monkeypatch.setattr(transform_memo, "record_digest", lambda r: hashed.append(r.id) or real(r))
    result = run_migration(options(source, target, ck, source_reader=lambda: SnapshotSource(snapshot)))
    assert result["source_read_from"].startswith("snapshot") and result["phases"]["delta"]["read"] == sum(e["count"] for e in manifest["collections"]), result["phases"]
    assert result["phases"]["delta"]["transform"]["reused"] > 0 and hashed == []
    assert_equal(exact(target.client()), expected_from_source(source.client()))
