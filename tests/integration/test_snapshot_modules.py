"""chroma_snapshot, chroma_restore and chroma_validate through a real ansible-playbook."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from module_play import run_module
from snapshot_data import SPECS, dump, populate

pytestmark = pytest.mark.timeout(600)


def test_snapshot_restore_validate_playbooks(chroma_pair, tmp_path):
    source, target = chroma_pair
    populate(source.client())
    snap = tmp_path / "runs" / "run-1" / "snapshot"
    src = {"url": source.url}

    # check mode: reports, writes nothing
    rc, res, out = run_module(tmp_path, "chroma_snapshot", {"source": src, "path": str(snap)}, check=True, name="c1")
    assert rc == 0, out
    assert res["changed"] and res["collections"] == {s["name"]: s["n"] for s in SPECS}
    assert not (tmp_path / "runs").exists()

    rc, res, out = run_module(tmp_path, "chroma_snapshot", {"source": src, "path": str(snap), "fingerprint": True,
                                                             "snapshot_id": "pre-migration-1"}, name="s1")
    assert rc == 0, out
    assert res["changed"] and res["snapshot_id"] == "pre-migration-1" and res["total_records"] == 1450
    assert res["total_bytes"] > 0 and (snap / "manifest.json").is_file()
    manifest = json.loads((snap / "manifest.json").read_text())
    assert manifest["server"] == source.url
    # the fingerprint taken from the snapshot's own pages is the one chroma_info takes (the gate's drift check)
    rc, info, out = run_module(tmp_path, "chroma_info", {"server": src, "fingerprint": True}, name="f1")
    assert rc == 0 and res["fingerprint"] == info["fingerprint"], out
    assert sorted(res["fingerprint"]["collections"]) == sorted(s["name"] for s in SPECS)

    rc, res, out = run_module(tmp_path, "chroma_snapshot", {"source": src, "path": str(snap), "fingerprint": True},
                              name="s2")
    assert rc == 0 and res["changed"] is False and "fingerprint" not in res, out  # idempotent

    tgt = {"url": target.url}
    rc, res, out = run_module(tmp_path, "chroma_restore", {"path": str(snap), "target": tgt}, check=True, name="r0")
    assert rc == 0 and res["changed"] and res["restored"]["snap_l2"] == 450, out
    assert target.client().list_collections() == []

    rc, res, out = run_module(tmp_path, "chroma_restore", {"path": str(snap), "target": tgt}, name="r1")
    assert rc == 0 and res["total_records"] == 1450, out
    rc, res, out = run_module(tmp_path, "chroma_restore", {"path": str(snap), "target": tgt}, name="r2")
    assert rc != 0 and "replace=true" in res["msg"], out
    assert dump(target.client())["snap_ip"]["ids"] == dump(source.client())["snap_ip"]["ids"]

    # validate the restored copy (no routing, no schema: names and metadata kept)
    reports = tmp_path / "reports"
    args = {"source": src, "target": tgt, "report_dir": str(reports)}
    rc, res, out = run_module(tmp_path, "chroma_validate", args, check=True, name="v0")
    assert rc == 0 and res["changed"] is False and res["reports_written"] is False, out
    assert not reports.exists()
    rc, res, out = run_module(tmp_path, "chroma_validate", args, name="v1")
    assert rc == 0 and res["changed"] is False, out
    assert res["overall_status"] == "PASSED", [(c["name"], c["status"], c["summary"]) for c in res["checks"]]
    assert res["semantic_divergence_percentage"] < 5.0
    assert Path(res["report_md"]).is_file() and json.loads(Path(res["report_json"]).read_text())["overall_status"] == "PASSED"

    # a bad threshold is named before anything runs
    rc, res, out = run_module(tmp_path, "chroma_validate", dict(args, thresholds={"max_loss": 3}), name="v2")
    assert rc != 0 and "thresholds.max_loss" in res["msg"], out


def test_tampered_snapshot_refused_by_module(chroma_pair, tmp_path):
    source, target = chroma_pair
    populate(source.client(), SPECS[2:])
    snap = tmp_path / "snap"
    rc, _, out = run_module(tmp_path, "chroma_snapshot", {"source": {"url": source.url}, "path": str(snap)}, name="s")
    assert rc == 0, out
    victim = snap / "collections" / "snap_ip" / "records.jsonl"
    data = bytearray(victim.read_bytes())
    data[10] ^= 0x20
    victim.write_bytes(bytes(data))
    rc, res, out = run_module(tmp_path, "chroma_restore", {"path": str(snap), "target": {"url": target.url}}, name="r")
    assert rc != 0 and "collections/snap_ip/records.jsonl" in res["msg"], out
    assert target.client().list_collections() == []


def test_physical_refused_while_running_and_prune(chroma_factory, tmp_path):
    server = chroma_factory("phys")
    populate(server.client(), SPECS[1:2])
    args = {"kind": "physical", "persist_dir": str(server.persist), "source": {"url": server.url},
            "path": str(tmp_path / "snaps" / "p1")}
    rc, res, out = run_module(tmp_path, "chroma_snapshot", args, name="p0")
    assert rc != 0 and "while the server uses it" in res["msg"], out
    server.stop()
    rc, res, out = run_module(tmp_path, "chroma_snapshot", args, name="p1")
    assert rc == 0 and res["changed"], out

    # retention: an old copy goes, the newest and the protected one stay
    old = tmp_path / "snaps" / "p0"
    rc, _, out = run_module(tmp_path, "chroma_snapshot", dict(args, path=str(old)), name="p2")
    assert rc == 0, out
    protected = tmp_path / "snaps" / "p-protected"
    rc, _, out = run_module(tmp_path, "chroma_snapshot", dict(args, path=str(protected)), name="p3")
    assert rc == 0, out
    for path in (old, protected):  # make them 10 days old in their manifests
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["created_unix"] = time.time() - 10 * 86400
        from chroma_runbook.snapshot.manifest import write_manifest
        os.remove(path / "manifest.json")
        os.remove(path / "manifest.json.sha256")
        write_manifest(path, manifest)
    prune_args = {"state": "pruned", "path": str(tmp_path / "snaps"), "retention_days": 7, "protect": [str(protected)]}
    rc, res, out = run_module(tmp_path, "chroma_snapshot", prune_args, check=True, name="x0")
    assert rc == 0 and res["pruned"] == [str(old)] and old.exists(), out
    rc, res, out = run_module(tmp_path, "chroma_snapshot", prune_args, name="x1")
    assert rc == 0 and res["changed"] and not old.exists() and protected.exists(), out
    assert (tmp_path / "snaps" / "p1").exists()
    rc, res, out = run_module(tmp_path, "chroma_snapshot", prune_args, name="x2")
    assert rc == 0 and res["changed"] is False, out
