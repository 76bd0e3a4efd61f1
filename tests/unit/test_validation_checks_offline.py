"""Checks on in-memory data (no server): NaN grading, loss accounting, duplicates."""
from __future__ import annotations

import numpy as np

from chroma_runbook.migrate.transform import Transformer
from chroma_runbook.validation.check_counts import check_counts
from chroma_runbook.validation.check_duplicates import check_duplicates
from chroma_runbook.validation.check_embeddings import check_embeddings
from chroma_runbook.validation.context import Context
from chroma_runbook.validation.expectation import build_expectation
from chroma_runbook.validation.sides import CollectionData
from chroma_runbook.validation.thresholds import merge_thresholds


def coll(name, ids, vectors, docs=None, space="l2"):
    return CollectionData(name, space, list(ids), np.asarray(vectors, dtype=np.float32),
                          docs or [f"doc {i}" for i in ids], [{"k": 1} for _ in ids])


def context(source, target, rejects=None):
    transformer = Transformer.from_options(None, None)
    exp = build_expectation(transformer, source)
    return Context(source, target, exp, transformer, merge_thresholds({}), rejects)


def test_nan_share_grades_warning_then_failed():
    n = 2000
    vecs = np.ones((n, 4), dtype=np.float32)
    ids = [f"r{i}" for i in range(n)]
    bad = vecs.copy()
    bad[0, 1] = np.nan                      # 1 of 2000 = 0.05% < 0.1% -> WARNING (plus altered)
    ctx = context({"c": coll("c", ids, vecs)}, {"c": coll("c", ids, bad)})
    result = check_embeddings(ctx)
    assert result.figures["nan_vectors"] == 1 and result.offending["nan"] == ["r0"]
    assert result.figures["altered"] == 1 and result.status == "FAILED"   # the NaN vector differs too
    ctx.thresholds["max_altered_vectors"] = 1
    assert check_embeddings(ctx).status == "WARNING"
    bad[1:4, 0] = np.nan                    # 4 of 2000 = 0.2% -> FAILED
    ctx = context({"c": coll("c", ids, vecs)}, {"c": coll("c", ids, bad)})
    ctx.thresholds["max_altered_vectors"] = 10
    assert check_embeddings(ctx).status == "FAILED"


def test_tolerance_accepts_one_ulp_and_rejects_more():
    vecs = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    drift = np.nextafter(vecs, np.inf)      # one ulp everywhere: cosine re-store drift
    ids = [f"r{i}" for i in range(10)]
    assert check_embeddings(context({"c": coll("c", ids, vecs)}, {"c": coll("c", ids, drift)})).status == "PASSED"
    moved = vecs.copy()
    moved[3, 0] += 1e-4
    result = check_embeddings(context({"c": coll("c", ids, vecs)}, {"c": coll("c", ids, moved)}))
    assert result.status == "FAILED" and result.offending["altered"] == ["r3"]


def test_loss_vs_quarantine():
    ids = [f"r{i}" for i in range(100)]
    vecs = np.ones((100, 2))
    kept = ids[:90]
    target = {"c": coll("c", kept, np.ones((90, 2)))}
    rejects = {rid: ["zero_vector"] for rid in ids[90:95]}   # 5 quarantined, 5 lost
    result = check_counts(context({"c": coll("c", ids, vecs)}, target, rejects))
    assert result.figures["quarantined_in_rejects"] == 5 and result.figures["lost"] == 5
    assert result.figures["data_loss_percentage"] == 5.0 and result.status == "FAILED"
    assert result.offending["lost"] == sorted(ids[95:])


def test_duplicate_documents_beyond_the_source():
    src = coll("c", ["a", "b", "c"], np.ones((3, 2)), docs=["same", "same", "other"])
    ok = coll("c", ["a", "b", "c"], np.ones((3, 2)), docs=["same", "same", "other"])
    assert check_duplicates(context({"c": src}, {"c": ok})).status == "PASSED"   # the source's own repeat
    extra = coll("c", ["a", "b", "c", "d"], np.ones((4, 2)), docs=["same", "same", "other", "other"])
    result = check_duplicates(context({"c": src}, {"c": extra}))
    assert result.status == "FAILED" and result.figures["extra_copies"] == 1
