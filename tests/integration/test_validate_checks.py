"""The eight validation checks against real servers: a faithful copy passes, each kind of
damage fails its own check.

One source (the lab's legacy dataset at scale 0.2, routed and transformed by the lab's
profile) and one target server; every test gets its own target *database* restored from
a snapshot of the faithful copy, so tests cannot see each other's damage.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from chroma_runbook.io.connection import connect
from chroma_runbook.snapshot.restore import restore_snapshot
from chroma_runbook.snapshot.snapshot import take_snapshot
from chroma_runbook.migrate.transform import Transformer
from chroma_runbook.validation import registry
from chroma_runbook.validation.context import CheckResult
from chroma_runbook.validation.runner import ValidationOptions, run_validation
from lab import dataset
from migrated_copy import lab_profile, migrate_copy

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Source + faithful target (default database) + snapshot of the target + rejects file."""
    import conftest  # the shared fixtures module (tests/conftest.py)

    base = tmp_path_factory.mktemp("validate")
    servers = []
    try:
        for name in ("source", "target"):
            (base / name).mkdir()
            servers.append(conftest.ChromaServer(base / name, conftest.free_port(), base / f"{name}.log").start())
        source, target = servers
        dataset.load(source.url, scale=0.2)
        routing, schema = lab_profile()
        transformer = Transformer.from_options(routing, schema)
        rejects = base / "rejects.jsonl"
        counts = migrate_copy(source.client(), target.client(), transformer, rejects)
        golden = base / "golden"
        take_snapshot(target.client(), golden)
        source_snapshot = base / "source-snapshot"
        take_snapshot(source.client(), source_snapshot)
        yield {"source": source, "target": target, "transformer": transformer, "rejects": rejects,
               "golden": golden, "counts": counts, "base": base, "source_snapshot": source_snapshot}
    finally:
        for server in servers:
            server.stop()


def fresh_target(world: dict[str, Any]) -> tuple[dict[str, str], Any]:
    """A new database on the target server holding the faithful copy."""
    target = world["target"]
    database = f"t_{uuid.uuid4().hex[:10]}"
    admin = chromadb.AdminClient(Settings(chroma_api_impl="chromadb.api.fastapi.FastAPI",
                                          chroma_server_host="127.0.0.1", chroma_server_http_port=target.port,
                                          anonymized_telemetry=False))
    admin.create_database(database)
    conn = {"url": target.url, "database": database}
    client = connect(conn)
    restore_snapshot(client, world["golden"])
    return conn, client


def validate(world: dict[str, Any], client: Any, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    options = ValidationOptions(report_dir=str(tmp_path / "reports"), rejects_path=str(world["rejects"]),
                                source_label=world["source"].url, target_label="target", **kw)
    if "rejects_path" in kw:
        options.rejects_path = kw["rejects_path"]
    return run_validation(world["source"].client(), client, world["transformer"], options)


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def get_all(coll: Any, ids: list[str]) -> dict[str, Any]:
    return coll.get(ids=ids, include=["embeddings", "documents", "metadatas"])


def pick(coll: Any, n: int, seed: int = 7) -> list[str]:
    ids = coll.get(include=[])["ids"]
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=n, replace=False).tolist())


def rewrite(coll: Any, ids: list[str], change) -> None:
    """Delete and re-add records with ``change(metadata)`` applied (drops keys, unlike update)."""
    got = get_all(coll, ids)
    metas = [change(dict(m)) for m in got["metadatas"]]
    coll.delete(ids=got["ids"])
    coll.add(ids=got["ids"], embeddings=np.asarray(got["embeddings"], dtype=np.float32),
             documents=got["documents"], metadatas=metas)


# --- faithful copy --------------------------------------------------------------------

def test_faithful_copy_passes_every_check(world, tmp_path):
    _, client = fresh_target(world)
    report = validate(world, client, tmp_path)
    assert report["overall_status"] == "PASSED", [(c["name"], c["status"], c["summary"]) for c in report["checks"]]
    assert report["rollback_triggered"] is False and report["rollback_reason"] is None
    assert [c["status"] for c in report["checks"]] == ["PASSED"] * 8
    assert report["data_loss_percentage"] == 0.0
    assert report["semantic_divergence_percentage"] < 5.0
    counts = check(report, "count_verification")["figures"]
    quarantined = sum(1 for _ in world["rejects"].open())
    assert quarantined > 0 and counts["quarantined_in_rejects"] == quarantined and counts["lost"] == 0
    assert counts["found_on_target"] == sum(world["counts"].values())
    md = Path(report["report_md"]).read_text()
    saved = json.loads(Path(report["report_json"]).read_text())
    assert "**PASSED**" in md and "Citation references" in md and "quarantined" in md
    assert saved["overall_status"] == "PASSED" and len(saved["checks"]) == 8
    assert saved["report_md"] == report["report_md"]


def test_without_rejects_file_profile_rejects_are_not_loss(world, tmp_path):
    _, client = fresh_target(world)
    options = ValidationOptions(report_dir=str(tmp_path / "r"))
    report = run_validation(world["source"].client(), client, world["transformer"], options)
    counts = check(report, "count_verification")
    assert report["overall_status"] == "PASSED" and report["data_loss_percentage"] == 0.0
    assert counts["figures"]["rejected_by_profile_unconfirmed"] == sum(1 for _ in world["rejects"].open())
    assert any("No rejects file" in note for note in counts["notes"])


# --- 1. count verification / data loss -------------------------------------------------

def test_a_few_percent_deleted_fails_with_the_right_loss(world, tmp_path):
    _, client = fresh_target(world)
    source_total = sum(c.count() for c in world["source"].client().list_collections())
    deleted = []
    for coll in client.list_collections():
        victims = pick(coll, max(1, coll.count() * 3 // 100))
        coll.delete(ids=victims)
        deleted += victims
    report = validate(world, client, tmp_path)
    expected_pct = round(100.0 * len(deleted) / source_total, 4)
    assert report["overall_status"] == "FAILED" and report["rollback_triggered"]
    assert report["data_loss_percentage"] == pytest.approx(expected_pct, abs=1e-3)
    assert 2.0 < report["data_loss_percentage"] < 5.0
    assert report["rollback_reason"] == "Chunk Count Mismatch"
    counts = check(report, "count_verification")
    assert counts["status"] == "FAILED" and counts["figures"]["lost"] == len(deleted)
    assert counts["offending_ids"]["lost"] == sorted(deleted)[:20]



def test_checks_are_read_by_name_whatever_their_order_and_a_ninth_joins(world, tmp_path, monkeypatch):
    """The verdict reads data loss and divergence from the checks named so: the registry
    reversed, with a ninth check registered in one line, gives the same verdict figures."""
    _, client = fresh_target(world)
    for coll in client.list_collections():
        coll.delete(ids=pick(coll, max(1, coll.count() * 3 // 100)))
    usual = validate(world, client, tmp_path / "usual")

    def ninth(ctx):
        return CheckResult("ninth_check", "Ninth check", "WARNING", "registered in one line")

    reordered = {name: registry.CHECKS[name] for name in reversed(list(registry.CHECKS))}
    monkeypatch.setattr(registry, "CHECKS", {**reordered, "ninth_check": ninth})
    report = validate(world, client, tmp_path / "reordered")
    assert [c["name"] for c in report["checks"]] == [*reversed([c["name"] for c in usual["checks"]]), "ninth_check"]
    assert report["summary"]["total"] == 9 and report["summary"]["warnings"] == usual["summary"]["warnings"] + 1
    for key in ("data_loss_percentage", "semantic_divergence_percentage", "record_pass_rate", "records",
                "overall_status"):
        assert report[key] == usual[key], key
    assert sorted(report["rollback_reasons"]) == sorted(usual["rollback_reasons"])   # listed in check order
    assert 2.0 < report["data_loss_percentage"] < 5.0
    assert "Ninth check" in Path(report["report_md"]).read_text()


def test_a_check_registered_under_another_name_is_refused():
    with pytest.raises(ValueError, match="registered as 'count_verification' returned a result named 'x'"):
        registry.run_check("count_verification", lambda ctx: CheckResult("x", "X", "PASSED", ""), None)

def test_more_than_five_percent_lost_is_data_loss_detected(world, tmp_path):
    _, client = fresh_target(world)
    coll = client.get_collection("sergio_corpus")
    victims = pick(coll, coll.count() // 2)
    coll.delete(ids=victims)
    report = validate(world, client, tmp_path)
    assert report["data_loss_percentage"] > 5.0
    assert report["rollback_reason"] == "Data Loss Detected"
    assert "Chunk Count Mismatch" in report["rollback_reasons"]


# --- 2. embedding integrity ------------------------------------------------------------

def test_altered_vectors_fail_with_their_ids(world, tmp_path):
    _, client = fresh_target(world)
    coll = client.get_collection("sergio_humor")
    victims = pick(coll, 5)
    got = get_all(coll, victims)
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    vectors[:, 3] += 0.01
    coll.update(ids=got["ids"], embeddings=vectors)
    report = validate(world, client, tmp_path)
    emb = check(report, "embedding_integrity")
    assert emb["status"] == "FAILED" and emb["figures"]["altered"] == 5
    assert emb["offending_ids"]["altered"] == victims
    assert report["overall_status"] == "FAILED" and report["rollback_reason"] == "Embedding Corruption"


# --- 3. metadata completeness ----------------------------------------------------------

def test_missing_required_field_fails_completeness(world, tmp_path):
    _, client = fresh_target(world)
    coll = client.get_collection("sergio_corpus")
    victims = pick(coll, 40)
    rewrite(coll, victims, lambda m: {k: v for k, v in m.items() if k != "author"})
    report = validate(world, client, tmp_path)
    meta = check(report, "metadata_completeness")
    assert meta["status"] == "FAILED", meta["summary"]
    assert meta["figures"]["incomplete_records"] == 40 and meta["figures"]["missing_by_field"] == {"author": 40}
    assert meta["offending_ids"]["incomplete"] == victims[:20]
    assert report["rollback_reason"] == "Schema Violation"


# --- 4. semantic search equivalence ----------------------------------------------------

def test_shuffled_vectors_make_search_diverge(world, tmp_path):
    _, client = fresh_target(world)
    for coll in client.list_collections():
        got = coll.get(include=["embeddings"])
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
        rng = np.random.default_rng(3)
        coll.update(ids=got["ids"], embeddings=vectors[rng.permutation(len(vectors))])
    report = validate(world, client, tmp_path)
    sem = check(report, "semantic_search_equivalence")
    assert sem["status"] == "FAILED" and report["semantic_divergence_percentage"] > 20.0
    assert sem["figures"]["source_recall"] > 0.9
    assert report["rollback_reasons"][0] == "Search Results Diverged"


def test_test_queries_file_with_filters(world, tmp_path):
    _, client = fresh_target(world)
    coll = client.get_collection("sergio_humor")
    got = coll.get(limit=3, include=["embeddings"])
    queries = [{"name": f"q{i}", "embedding": [float(x) for x in emb], "collection": "sergio_humor",
                "where": {"language": "en"}} for i, emb in enumerate(got["embeddings"])]
    queries.append({"name": "everywhere", "embedding": [float(x) for x in got["embeddings"][0]]})
    path = tmp_path / "queries.json"
    path.write_text(json.dumps({"queries": queries}))
    report = validate(world, client, tmp_path, test_queries_path=str(path))
    sem = check(report, "semantic_search_equivalence")
    assert sem["figures"]["test_queries_total"] == 4 and sem["figures"]["test_queries_working"] == 4
    assert set(sem["figures"]["test_queries"][3]["recall"]) == set(world["counts"])
    assert sem["status"] == "PASSED"


# --- 5. collection distribution --------------------------------------------------------

def test_records_in_the_wrong_collection_fail_distribution(world, tmp_path):
    _, client = fresh_target(world)
    corpus, humor = client.get_collection("sergio_corpus"), client.get_collection("sergio_humor")
    victims = pick(corpus, 10)
    got = get_all(corpus, victims)
    corpus.delete(ids=victims)
    humor.add(ids=got["ids"], embeddings=np.asarray(got["embeddings"], dtype=np.float32),
              documents=got["documents"], metadatas=got["metadatas"])
    report = validate(world, client, tmp_path)
    dist = check(report, "collection_distribution")
    assert dist["status"] == "FAILED" and dist["figures"]["misrouted"] == 10
    assert dist["figures"]["per_target"]["sergio_humor"]["actual"] == world["counts"]["sergio_humor"] + 10
    assert all("expected sergio_corpus" in entry for entry in dist["offending_ids"]["misrouted"])
    assert report["data_loss_percentage"] == 0.0  # misplaced, not lost
    assert check(report, "count_verification")["status"] == "PASSED"


# --- 6. duplicate detection ------------------------------------------------------------

def test_duplicates_fail(world, tmp_path):
    _, client = fresh_target(world)
    corpus, humor = client.get_collection("sergio_corpus"), client.get_collection("sergio_humor")
    got = get_all(corpus, pick(corpus, 2))
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    # the same id in a second collection, and the same document routed twice under a new id
    humor.add(ids=[got["ids"][0]], embeddings=vectors[:1], documents=got["documents"][:1],
              metadatas=got["metadatas"][:1])
    corpus.add(ids=["copy-of-" + got["ids"][1]], embeddings=vectors[1:], documents=got["documents"][1:],
               metadatas=got["metadatas"][1:])
    report = validate(world, client, tmp_path)
    dup = check(report, "duplicate_detection")
    assert dup["status"] == "FAILED"
    assert dup["figures"]["duplicate_ids"] == 1 and got["ids"][0] in dup["offending_ids"]["duplicate_ids"][0]
    assert dup["figures"]["extra_copies"] == 2
    assert any("copy-of-" + got["ids"][1] in e for e in dup["offending_ids"]["duplicate_documents"])
    assert "Duplicate IDs Found" in report["rollback_reasons"]


# --- 7. field type validation ----------------------------------------------------------

def test_wrong_types_and_ranges_fail_field_validation(world, tmp_path):
    _, client = fresh_target(world)
    coll = client.get_collection("sergio_corpus")
    victims = pick(coll, 30)
    coll.update(ids=victims[:15], metadatas=[{"authenticity_score": "high"}] * 15)
    coll.update(ids=victims[15:], metadatas=[{"word_count": -3, "language": "xx"}] * 15)
    report = validate(world, client, tmp_path)
    types = check(report, "field_type_validation")
    assert types["status"] == "FAILED" and types["figures"]["records_with_violations"] == 30
    assert types["figures"]["violations_by_field"] == {"authenticity_score:type": 15, "word_count:range": 15,
                                                      "language:allowed": 15}
    assert report["rollback_triggered"] and "Field Type Violation" in report["rollback_reasons"]


# --- 8. citation references ------------------------------------------------------------

def test_broken_citations_fail(world, tmp_path):
    _, client = fresh_target(world)
    coll = client.get_collection("sergio_rhetorical")
    victims = pick(coll, 4)
    coll.update(ids=victims[:2], metadatas=[{"if_citation_uri": "cite:nowhere"}] * 2)
    coll.update(ids=victims[2:], metadatas=[{"if_citation_uri": f"if://citation/{victims[0]}-x"}] * 2)
    report = validate(world, client, tmp_path)
    cites = check(report, "citation_references")
    figures = cites["figures"]["per_field"]["if_citation_uri"]
    assert cites["status"] == "FAILED" and figures["malformed"] == 2 and figures["duplicate"] == 2  # each pair shares one value
    assert any(victims[0] in e for e in cites["offending_ids"]["malformed"])
    assert "Citation Reference Errors" in report["rollback_reasons"]


def test_marginal_completeness_is_a_warning_without_rollback(world, tmp_path):
    """Runbook step 5: metadata completeness 99%+ (but not 100%) is marginal -> WARNING."""
    _, client = fresh_target(world)
    total = sum(world["counts"].values())
    n = max(1, total // 200)   # 0.5%
    coll = client.get_collection("sergio_corpus")
    victims = pick(coll, n)
    rewrite(coll, victims, lambda m: {k: v for k, v in m.items() if k != "author"})
    report = validate(world, client, tmp_path)
    meta = check(report, "metadata_completeness")
    assert meta["status"] == "WARNING" and 99.0 <= meta["figures"]["complete_percentage"] < 100.0
    assert report["overall_status"] == "WARNING" and report["rollback_triggered"] is False
    assert report["rollback_reason"] is None and report["record_pass_rate"] > 99.0
    assert "REVIEW" in Path(report["report_md"]).read_text()


def test_empty_target_is_total_loss(world, tmp_path):
    """A migration that wrote nothing: every check that can tell says so, reason Data Loss Detected."""
    target = world["target"]
    database = f"e_{uuid.uuid4().hex[:10]}"
    chromadb.AdminClient(Settings(chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host="127.0.0.1",
                                  chroma_server_http_port=target.port,
                                  anonymized_telemetry=False)).create_database(database)
    report = validate(world, connect({"url": target.url, "database": database}), tmp_path)
    assert report["overall_status"] == "FAILED" and report["rollback_reason"] == "Data Loss Detected"
    assert report["data_loss_percentage"] > 95.0 and report["semantic_divergence_percentage"] == 100.0
    dist = check(report, "collection_distribution")
    assert sorted(dist["figures"]["missing_collections"]) == sorted(world["counts"])


def test_source_read_from_its_snapshot_gives_the_same_verdicts(world, tmp_path):
    _, client = fresh_target(world)
    from_server = validate(world, client, tmp_path / "a")
    from_snapshot = validate(world, client, tmp_path / "b", source_snapshot=str(world["source_snapshot"]))
    assert from_snapshot["overall_status"] == "PASSED" and "read_source_snapshot" in from_snapshot["durations"]
    for a, b in zip(from_server["checks"], from_snapshot["checks"]):
        assert (a["name"], a["status"], a["offending_counts"]) == (b["name"], b["status"], b["offending_counts"])
    coll = client.get_collection("sergio_personality")
    victims = pick(coll, 3)
    got = get_all(coll, victims)
    coll.update(ids=got["ids"], embeddings=np.asarray(got["embeddings"], dtype=np.float32) * 2)
    damaged = validate(world, client, tmp_path / "c", source_snapshot=str(world["source_snapshot"]))
    assert check(damaged, "embedding_integrity")["offending_ids"]["altered"] == victims
