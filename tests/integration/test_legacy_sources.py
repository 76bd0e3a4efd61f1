"""Sources people actually run (issue #12): real Chroma 0.4.24 and 0.5.23 servers, each from its own
pinned venv (.cache/legacy/), migrated to a real 1.5.9 target as an exact identity copy; and
``path:`` sources that are never written, whatever happens."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chroma_runbook.io.source import HttpSource, open_source
from chroma_runbook.io.values import differing_fields
from lab import legacy
from migrate_play import base_args, run_migrate
from module_play import run_module

EDGE = Path(__file__).with_name("legacy_edge_data.py")
VERSIONS = ["0.4.24", "0.5.23"]
SIZE = 130
EXPECTED_SPACE = {"edge_cosine": "cosine", "edge_l2": "l2", "edge_ip": "ip"}


def _load_edge(version: str, where: list[str]) -> None:
    """The edge-case collections, written by that version's own client."""
    if version == "1.x":
        proc = subprocess.run([sys.executable, str(EDGE), *where], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, ANONYMIZED_TELEMETRY="False"))
    else:
        proc = legacy.run_in_venv(version, [str(EDGE), *where], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _read_all(client: Any) -> dict[str, Any]:
    """Everything a server holds, as it answers now (a fresh read: no client-side cache)."""
    out = {}
    for col in client.list_collections():
        got = client.get_collection(col.name).get(include=["embeddings", "documents", "metadatas"])
        rows = {rid: (got["documents"][i], got["metadatas"][i], np.asarray(got["embeddings"][i], dtype=np.float32))
                for i, rid in enumerate(got["ids"])}
        out[col.name] = {"metadata": dict(col.metadata or {}), "rows": rows}
    return out


def _assert_identity(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert sorted(after) == sorted(before)
    for name, want in before.items():
        got = after[name]
        assert got["metadata"] == want["metadata"], name
        assert {k: type(v) for k, v in got["metadata"].items()} == {k: type(v) for k, v in want["metadata"].items()}
        assert set(got["rows"]) == set(want["rows"]) and len(got["rows"]) == SIZE, name
        for rid, (doc, meta, emb) in want["rows"].items():
            t_doc, t_meta, t_emb = got["rows"][rid]
            assert t_doc == doc and type(t_doc) is type(doc), (name, rid)            # None stays None, "" stays ""
            assert differing_fields(meta, t_meta) == [], (name, rid, meta, t_meta)  # floats within 4 ulp
            assert {k: type(v) for k, v in t_meta.items()} == {k: type(v) for k, v in meta.items()}, (name, rid)
            assert all(t_meta[k] == v for k, v in meta.items() if not isinstance(v, float)), (name, rid)
            assert t_emb.shape == emb.shape and np.allclose(t_emb, emb, rtol=0, atol=1e-6), (name, rid)


@pytest.mark.parametrize("version", VERSIONS)
def test_identity_copy_from_a_legacy_server(version: str, legacy_factory, chroma_factory, tmp_path: Path) -> None:  # noqa: ANN001
    source = legacy_factory(version, "source")
    target = chroma_factory("target")
    _load_edge(version, ["--url", source.url])
    reader = open_source({"url": source.url})
    assert isinstance(reader, HttpSource) and reader.version.version == version and reader.version.api == "v1"
    before = _read_all(reader)
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    assert {nfc, nfd} <= set(before["edge_l2"]["rows"])                            # two distinct ids
    assert before["edge_cosine"]["metadata"]["flag"] == (1 if version == "0.4.24" else True)  # 0.4.24 stores 1

    # preflight's view (chroma_info answered "HTTP Error 404" for a 0.4.24 server before)
    rc, info, out = run_module(tmp_path, "chroma_info", {"server": {"url": source.url}}, name="info")
    assert rc == 0, out
    assert info["server_version"] == {"version": version, "api": "v1", "legacy": True}
    assert info["counts"] == {name: SIZE for name in EXPECTED_SPACE} and info["collections"]["edge_l2"]["dimension"] == 16

    # migrate (0.4.24 failed with 'Not Found', 0.5.23 with 'metadata differs in [ratio]' before)
    rc, res, out = run_migrate(tmp_path, base_args(source.url, target.url, tmp_path / "ck", run_id=f"legacy-{version}"),
                               name="migrate")
    assert rc == 0, out
    assert res["verification"]["passed"] is True and res["imported"] == 3 * SIZE
    assert res["source_version"]["version"] == version

    target_client = target.client()
    _assert_identity(before, _read_all(target_client))
    for name, space in EXPECTED_SPACE.items():                       # hnsw:space wins over 0.5.23's "l2"
        hnsw = target_client.get_collection(name).configuration_json["hnsw"]
        assert hnsw["space"] == space, (name, hnsw)
    hnsw = target_client.get_collection("edge_cosine").configuration_json["hnsw"]
    assert (hnsw["max_neighbors"], hnsw["ef_construction"], hnsw["ef_search"]) == (24, 150, 77), hnsw

    # validation: ids repeat across the three collections, legitimately ("Duplicate IDs Found" before)
    rc, val, out = run_module(tmp_path, "chroma_validate", {"source": {"url": source.url}, "target": {"url": target.url},
                                                            "report_dir": str(tmp_path / "reports")}, name="validate")
    assert rc == 0, out
    checks = {c["name"]: c for c in val["checks"]}
    assert val["overall_status"] == "PASSED", [(c["name"], c["status"], c["summary"]) for c in val["checks"]]
    assert val["record_pass_rate"] == 100.0
    assert checks["duplicate_detection"]["figures"]["duplicate_ids"] == 0
    assert checks["duplicate_detection"]["figures"]["source_repeated_ids"] == 2 * SIZE

    # snapshot of the legacy source
    rc, snap, out = run_module(tmp_path, "chroma_snapshot", {"source": {"url": source.url},
                                                             "path": str(tmp_path / "snap")}, name="snapshot")
    assert rc == 0, out
    assert snap["collections"] == {name: SIZE for name in EXPECTED_SPACE}

    after = _read_all(open_source({"url": source.url}))            # the source is as it was
    assert after.keys() == before.keys()
    for name in before:
        assert after[name]["metadata"] == before[name]["metadata"]
        assert {r: (d, m, e.tobytes()) for r, (d, m, e) in after[name]["rows"].items()} == \
            {r: (d, m, e.tobytes()) for r, (d, m, e) in before[name]["rows"].items()}


def test_a_legacy_server_is_refused_as_a_target(legacy_factory, chroma_factory, tmp_path: Path) -> None:  # noqa: ANN001
    old = legacy_factory("0.4.24", "old")
    source = chroma_factory("source")
    source.client().create_collection("some_things").add(ids=["a"], embeddings=[[1.0, 2.0]])
    rc, res, out = run_migrate(tmp_path, base_args(source.url, old.url, tmp_path / "ck", run_id="to-old"), name="m")
    assert rc != 0
    assert "runs Chroma 0.4.24; the runbook writes to Chroma 1.x only" in res["msg"], res["msg"]


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("version", ["0.4.24", "0.5.23", "1.x"])
def test_path_sources_are_never_written(version: str, legacy_venv, chroma_factory, tmp_path: Path) -> None:  # noqa: ANN001
    if version != "1.x":
        legacy_venv(version)
    persist = tmp_path / "persist"
    _load_edge(version, ["--path", str(persist)])
    hashes = _hashes(persist)
    assert "chroma.sqlite3" in hashes
    target = chroma_factory("target")
    source = {"path": str(persist)}
    runs = {
        "info": ("chroma_info", {"server": source}),
        "snapshot": ("chroma_snapshot", {"source": source, "path": str(tmp_path / "snap")}),
        "migrate": ("chroma_migrate", base_args("http://x:1", target.url, tmp_path / "ck", run_id="p1",
                                                source=source)),
        "validate": ("chroma_validate", {"source": source, "target": {"url": target.url},
                                         "report_dir": str(tmp_path / "reports")}),
        "failing": ("chroma_migrate", base_args("http://x:1", target.url, tmp_path / "ck2", run_id="p2",
                                                source=source, collections=["nope"])),
    }
    for name, (module, args) in runs.items():
        rc, result, out = run_module(tmp_path, module, args, name=name)
        if version == "1.x":
            assert (rc == 0) == (name != "failing"), (name, out[-3000:])
            if name == "validate":
                assert result["overall_status"] == "PASSED", result
        else:
            label = "0.4.x" if version == "0.4.24" else "0.5.x"
            assert rc != 0, (name, out[-3000:])
            msg = result["msg"]
            assert f"is a Chroma {label}" in msg and "left untouched" in msg, msg
            assert f"chroma run --path {persist}" in msg and "source: {url: http://127.0.0.1:8000}" in msg, msg
        assert _hashes(persist) == hashes, f"{name} changed the source directory"
    if version != "1.x":
        assert target.client().list_collections() == []
