"""chroma_migrate with the lab's routing and 12-field profile on the lab's legacy dataset
(scaled down): routing, every transform rule as the target sees it, rejects, the 95% gate."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lab import dataset
from migrate_play import base_args, run_migrate
from tests.lab_vars import group_var

SCALE = 0.1
TARGETS = {"personality": "sergio_personality", "rhetorical": "sergio_rhetorical", "humor": "sergio_humor",
           "corpus": "sergio_corpus"}


def lab_args(source, target, tmp_path: Path, **extra):
    return base_args(source.url, target.url, tmp_path / "ck", routing=group_var("routing.yml", "chroma_routing"),
                     schema=group_var("schema_profile.yml", "chroma_schema_profile"), batch_size=250, **extra)


def test_lab_routing_profile_and_rejects(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    dataset.load(source.url, "legacy", SCALE, client=source.client())
    data = dataset.generate("legacy", SCALE)
    zero_ids = {rid for d in data for rid in d.zero_vector_ids}
    expected = Counter()
    legacy_by_id = {}
    for d in data:
        for i, rid in enumerate(d.ids):
            legacy_by_id[rid] = d.metadatas[i]
            if rid not in zero_ids:
                expected[TARGETS[d.classes[i]]] += 1

    rc, res, out = run_migrate(tmp_path, lab_args(source, target, tmp_path, run_id="lab"))
    assert rc == 0, out
    assert {n: t["expected"] for n, t in res["targets"].items()} == dict(expected)
    assert res["rejects_by_issue"] == {"zero_vector": len(zero_ids)}
    assert res["verification"]["passed"] is True

    client = target.client()
    assert sorted(c.name for c in client.list_collections()) == sorted(TARGETS.values())
    profile = group_var("schema_profile.yml", "chroma_schema_profile")
    core = [f["name"] for f in profile["fields"]]
    unknown_authors = 0
    for ctype, name in TARGETS.items():
        col = client.get_collection(name)
        assert col.count() == expected[name]
        assert col.configuration_json["hnsw"]["space"] == "cosine"
        assert col.metadata["description"] == profile["collections"][name]["metadata"]["description"]
        got = col.get(include=["metadatas", "documents"])
        specific = [f["name"] for f in profile["collection_fields"][ctype]]
        for rid, meta, doc in zip(got["ids"], got["metadatas"], got["documents"]):
            assert set(meta) == set(core + specific), rid
            legacy = legacy_by_id[rid]
            assert meta["collection_type"] == ctype
            assert meta["language"] in ("en", "es"), (rid, legacy["lang"])
            assert meta["language"] == legacy["lang"].lower()[:2]
            assert meta["authenticity_score"] == min(1.0, max(0.0, legacy["score"]))
            assert meta["source_file"] == legacy["file"] and meta["source_line"] == legacy["line"]
            assert meta["if_citation_uri"] == f"if://citation/{rid}"
            assert meta["author"] == legacy.get("author", "Unknown")
            unknown_authors += meta["author"] == "Unknown"
            assert "created_at" not in meta and "lang" not in meta  # legacy keys dropped
            if ctype == "corpus":
                assert meta["word_count"] == len(doc.split())
                assert meta["document_type"] == "md"
    assert unknown_authors == sum(1 for rid, m in legacy_by_id.items() if "author" not in m and rid not in zero_ids)
    assert unknown_authors > 0

    lines = [json.loads(line) for line in Path(res["rejects_path"]).read_text().splitlines()]
    assert {r["id"] for r in lines} == zero_ids
    for r in lines:
        assert r["issues"] == ["zero_vector"]
        assert r["record"]["embedding"] == [0.0] * 768
        assert r["record"]["metadata"] == legacy_by_id[r["id"]]
        assert r["source_collection"].startswith("openwebui_")


@pytest.mark.parametrize("staging", [True, False], ids=["staged", "validate-first"])
def test_gate_below_min_valid_ratio_writes_nothing(chroma_pair, tmp_path: Path, staging: bool) -> None:
    """Staged: batches may already sit in staging collections; they are dropped and the target's
    collections never exist. Validate-first: not one request writes to the target."""
    source, target = chroma_pair
    dataset.load(source.url, "damaged", SCALE, client=source.client())
    total = sum(len(d) for d in dataset.generate("damaged", SCALE))
    rc, res, out = run_migrate(tmp_path, lab_args(source, target, tmp_path, run_id="damaged", staging=staging))
    assert rc != 0
    assert "below min_valid_ratio 95.00%" in res["msg"] and "Top issues: zero_vector:" in res["msg"]
    log = [json.loads(line) for line in Path(res["log_path"]).read_text().splitlines()]
    staged = [e["staging"] for e in log if e["event"] == "staging_created"]
    if staging:
        assert "the target's collections were not touched" in res["msg"]
        assert all(name in res["msg"] for name in staged), (staged, res["msg"])  # each one named as dropped
    else:
        assert "nothing was written to the target" in res["msg"] and staged == []
    assert target.client().list_collections() == []
    assert res["total"] == total and res["valid_ratio"] < 0.95
    assert len(Path(res["rejects_path"]).read_text().splitlines()) == res["rejected"] > 0

    rc, res, out = run_migrate(tmp_path, lab_args(source, target, tmp_path, run_id="damaged2", min_valid_ratio=0.5))
    assert rc == 0, out
    assert sum(c.count() for c in target.client().list_collections()) == res["valid"]


def test_transform_rules_end_to_end(chroma_pair, tmp_path: Path) -> None:
    """Routing by metadata and collection glob, rename, default, normalize, clamp, reject, template,
    from_document - as the target collections finally hold them."""
    source, target = chroma_pair
    col = source.client().create_collection("legacy_notes", metadata={"hnsw:space": "l2"}, embedding_function=None)
    col.add(ids=["n1", "n2", "n3", "n4"], embeddings=np.eye(4, dtype=np.float32),
            documents=["A pun! A pun!", "plain text here", "very plain", None],
            metadatas=[{"kind": "Humour", "writer": "Ana", "lang": "ES-mx", "score": 7.5},
                       {"kind": "note", "lang": "EN", "score": "0.4"},
                       {"kind": "note", "lang": "klingon"},
                       {"kind": "note", "lang": "en", "rating": 99}])
    routing = [{"name": "fun", "target": "fun_notes", "match": {"metadata": {"kind": "(?i)^humou?r$"}}},
               {"name": "rest", "target": "plain_notes", "match": {"collection": "legacy_*"}}]
    schema = {"fields": [
        {"name": "author", "type": "str", "rename_from": ["writer"], "default": "Unknown"},
        {"name": "language", "type": "str", "rename_from": ["lang"], "normalize": ["lower", {"regex_sub": ["[-_].*$", ""]}],
         "allowed": ["en", "es"], "required": True},
        {"name": "score", "type": "float", "default": 0.5, "range": [0, 1], "on_range_error": "clamp"},
        {"name": "rating", "type": "int", "range": [0, 10]},
        {"name": "uri", "type": "str", "template": "if://citation/{{ target_collection }}/{{ id }}"},
        {"name": "puns", "type": "int", "from_document": {"regex": "(?i)\\bpun\\b", "count": True}},
    ]}
    args = base_args(source.url, target.url, tmp_path / "ck", routing=routing, schema=schema, min_valid_ratio=0.5)
    rc, res, out = run_migrate(tmp_path, args)
    assert rc == 0, out
    assert res["rejects_by_issue"] == {"not_allowed:language": 1, "out_of_range:rating": 1}
    client = target.client()
    fun = client.get_collection("fun_notes").get(ids=["n1"])["metadatas"][0]
    assert fun == {"author": "Ana", "language": "es", "score": 1.0, "uri": "if://citation/fun_notes/n1", "puns": 2}
    plain = client.get_collection("plain_notes").get(ids=["n2"])["metadatas"][0]
    assert plain == {"author": "Unknown", "language": "en", "score": 0.4, "uri": "if://citation/plain_notes/n2",
                     "puns": 0}
    assert client.get_collection("plain_notes").count() == 1
    assert client.get_collection("plain_notes").configuration_json["hnsw"]["space"] == "l2"
