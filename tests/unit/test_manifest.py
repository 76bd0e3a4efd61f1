"""Manifest verification without a server: every kind of tampering is named."""
from __future__ import annotations

import json
import os
import stat

import pytest

from chroma_runbook.io.fsutil import HashingWriter, make_private_dir, sha256_file
from chroma_runbook.snapshot.manifest import FORMAT, FORMAT_VERSION, SnapshotError, verify_snapshot, write_manifest


def build(tmp_path):
    snap = tmp_path / "s"
    make_private_dir(snap / "collections" / "c")
    files = {}
    for rel, data in (("collections/c/collection.json", b"{}"), ("collections/c/records.jsonl", b'{"id":"a"}\n{"id":"b"}\n'),
                      ("collections/c/embeddings.f32", bytes(2 * 3 * 4))):
        with HashingWriter(snap / rel) as w:
            w.write(data)
        size, digest = w.close()
        files[rel] = {"size": size, "sha256": digest}
    write_manifest(snap, {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "logical", "snapshot_id": "x",
                          "files": files, "collections": [{"name": "c", "count": 2, "dimension": 3, "files": {
                              "collection": "collections/c/collection.json", "records": "collections/c/records.jsonl",
                              "embeddings": "collections/c/embeddings.f32"}}]})
    return snap


def test_valid_snapshot_verifies_and_is_private(tmp_path):
    snap = build(tmp_path)
    result = verify_snapshot(snap)
    assert result.files_checked == 3 and result.collections == {"c": 2}
    assert stat.S_IMODE((snap / "collections").stat().st_mode) == 0o700
    assert stat.S_IMODE((snap / "manifest.json").stat().st_mode) == 0o600
    assert sha256_file(snap / "manifest.json")[1] in (snap / "manifest.json.sha256").read_text()


def test_missing_file_named(tmp_path):
    snap = build(tmp_path)
    os.remove(snap / "collections/c/embeddings.f32")
    with pytest.raises(SnapshotError, match="collections/c/embeddings.f32 is missing"):
        verify_snapshot(snap)


def test_grown_file_named(tmp_path):
    snap = build(tmp_path)
    with open(snap / "collections/c/records.jsonl", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(SnapshotError, match="records.jsonl has 23 bytes, manifest says 22"):
        verify_snapshot(snap)


def test_edited_manifest_refused(tmp_path):
    snap = build(tmp_path)
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["collections"][0]["count"] = 3
    (snap / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="manifest.json does not match its checksum"):
        verify_snapshot(snap)


def test_path_escape_refused(tmp_path):
    snap = build(tmp_path)
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["files"]["../outside"] = {"size": 0, "sha256": "x"}
    os.remove(snap / "manifest.json")
    os.remove(snap / "manifest.json.sha256")
    write_manifest(snap, manifest)
    with pytest.raises(SnapshotError, match="outside the snapshot"):
        verify_snapshot(snap)


def test_no_manifest_is_not_a_snapshot(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(SnapshotError, match="not a complete snapshot"):
        verify_snapshot(tmp_path / "half")
