"""Validation split around the freeze (issue 14 point 4), on real Chroma servers.

Before the freeze the record checks run on the pre-copied staging collections, for the
records the source has not changed since the pre-copy read them; under the freeze they
run on every other record (changed during or after the pre-copy, sent by the delta), and
the totals on everything. The report says which part ran when."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from chroma_runbook.migrate.migration import run_migration
from chroma_runbook.migrate.precopy import FingerprintStore, delta_ids_path, fingerprint_path
from chroma_runbook.migrate.transform import Transformer
from chroma_runbook.migrate.transform_memo import transform_memo_path
from chroma_runbook.run.names import staging_name
from chroma_runbook.validation.phased import run_freeze_validation, run_prevalidation
from chroma_runbook.validation.runner import ValidationOptions
from test_migrate_precopy import N, fill, options, precopy_with_writer


def vopts(source: Any, target: Any, tmp_path: Path, ck: Path) -> ValidationOptions:
    return ValidationOptions(report_dir=str(tmp_path / "reports"), rejects_path=None,
                             sample_size=10, source_label=source.url, target_label=target.url)


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def nudge(collection: Any, rid: str) -> None:
    """Change one record's vector (away from it, well beyond the tolerance)."""
    got = collection.get(ids=[rid], include=["embeddings"])
    collection.update(ids=[rid], embeddings=[(np.asarray(got["embeddings"][0]) + 0.5).tolist()])


def test_records_changed_during_the_precopy_are_checked_under_the_freeze(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    precopy_with_writer(source, target, ck)       # a writer changes records while the pre-copy runs
    ck.mkdir(exist_ok=True)
    # the apps still write after the pre-copy: this record is not what the pre-copy staged
    nudge(source.client().get_collection("pre_b"), "pre_b-200")
    transformer = Transformer.from_options(None, None)

    pre = run_prevalidation(source.client(), target.client(), transformer, vopts(source, target, tmp_path, ck),
                            "pc", str(ck))
    assert pre["overall_status"] == "PASSED", pre["rollback_reasons"]
    timing = pre["timing"]
    assert timing["records_before_freeze"] > 900 and timing["records_deferred_to_freeze"] >= 1
    assert check(pre, "embedding_integrity")["ran_text"].startswith("before the freeze (pre-copy, ")
    assert check(pre, "count_verification")["status"] == "SKIPPED"   # totals wait for the freeze
    state = json.loads((tmp_path / "reports" / "prevalidation.json").read_text())
    assert "pre_b-200" not in state["checked"]["pre_b"] and "pre_b-201" in state["checked"]["pre_b"]
    # changed by the writer during the pre-copy, after the pre-copy had read it: left to the freeze
    assert "pre_a-0" not in state["checked"]["pre_a"] and "pre_a-40" in state["checked"]["pre_a"]

    # a write after the pre-validation, before the freeze: this record's transform cannot be reused
    nudge(source.client().get_collection("pre_b"), "pre_b-300")
    # the freeze: the delta sends what changed; its ids outlive the migration (run dir)
    run_migration(options(source, target, ck))
    sent = json.loads(Path(delta_ids_path(str(ck), "pc")).read_text())
    assert "pre_b-200" in sent["pre_b"] and "pre_a-0" in sent["pre_a"] and "pre_new-0" in sent["pre_new"]
    # a record the delta sent, damaged on the target: the part under the freeze must see it
    nudge(target.client().get_collection("pre_b"), "pre_b-200")
    report = run_freeze_validation(source.client(), target.client(), transformer,
                                   vopts(source, target, tmp_path, ck), "pc", str(ck))
    emb = check(report, "embedding_integrity")
    # what the pre-validation made of each unchanged record was reused (its memo), the changed one transformed
    assert report["transform"]["reused"] >= 900 and report["transform"]["transformed"] == 1
    assert report["transform"]["reused"] + 1 == report["source_total"]
    assert not Path(transform_memo_path(str(ck), "pc", "validate")).exists()  # served: removed
    assert report["overall_status"] == "FAILED" and "Embedding Corruption" in report["rollback_reasons"]
    assert emb["offending_ids"]["altered"] == ["pre_b-200"]
    assert "before the freeze (pre-copy, " in emb["ran_text"] and "under the freeze (delta, " in emb["ran_text"]
    under = report["timing"]["records_under_freeze"]
    total = sum(c for c in report["target_collections"].values())
    assert 15 + 1 <= under < total / 2        # the delta's records, not the whole target
    assert report["timing"]["before_freeze_s"] is not None and report["timing"]["under_freeze_s"] is not None
    assert check(report, "count_verification")["ran_text"] == "under the freeze (totals)"
    md = Path(report["report_md"]).read_text()
    assert "| Before the freeze |" in md and f"(delta, {under} records + totals)" in md

    # repaired, the same run's validation under the freeze passes (nothing else was damaged)
    nudge_back = target.client().get_collection("pre_b")
    want = source.client().get_collection("pre_b").get(ids=["pre_b-200"], include=["embeddings"])["embeddings"]
    nudge_back.update(ids=["pre_b-200"], embeddings=[list(map(float, want[0]))])
    again = run_freeze_validation(source.client(), target.client(), transformer,
                                  vopts(source, target, tmp_path, ck), "pc", str(ck))
    assert again["overall_status"] == "PASSED", again["rollback_reasons"]
    assert again["records"]["lost"] == 0 and again["record_pass_rate"] == 100.0


def test_a_damaged_staging_record_fails_before_the_freeze_and_is_sent_again(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    run_migration(options(source, target, ck, precopy=True))
    nudge(target.client().get_collection(staging_name("pc", "pre_b")), "pre_b-300")
    transformer = Transformer.from_options(None, None)
    pre = run_prevalidation(source.client(), target.client(), transformer, vopts(source, target, tmp_path, ck),
                            "pc", str(ck))
    assert pre["overall_status"] == "FAILED" and pre["rollback_reason"] == "Embedding Corruption"
    assert check(pre, "embedding_integrity")["offending_ids"]["altered"] == ["pre_b-300"]
    assert pre["timing"]["records_before_freeze"] == sum(N.values())
    # the failing record is pending again: the next pass (here the delta) sends it again
    store = FingerprintStore(fingerprint_path(str(ck), "pc"))
    assert store.load()["pre_b"]["pre_b-300"] is None
    store.close()
    result = run_migration(options(source, target, ck))
    assert result["phases"]["delta"]["replaced"] == 1
    report = run_freeze_validation(source.client(), target.client(), transformer,
                                   vopts(source, target, tmp_path, ck), "pc", str(ck))
    # a FAILED pre-validation is never trusted: every check ran again on every record under the freeze
    assert report["overall_status"] == "PASSED" and report["timing"]["mode"] == "all under the freeze"
