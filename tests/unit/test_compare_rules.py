"""One comparison rule for verify and validate (floats within a few ulp, everything else exact),
and records counted as (collection, id) pairs: ids are unique per collection only (issue #12)."""
from __future__ import annotations

import numpy as np

from chroma_runbook.io.records import Record
from chroma_runbook.migrate.transform import Transformer
from chroma_runbook.validation.check_counts import check_counts
from chroma_runbook.validation.check_distribution import check_distribution
from chroma_runbook.validation.check_duplicates import check_duplicates
from chroma_runbook.validation.check_embeddings import check_embeddings
from chroma_runbook.validation.check_metadata import check_metadata
from chroma_runbook.validation.context import Context
from chroma_runbook.validation.expectation import build_expectation
from chroma_runbook.validation.runner import _record_pass_rate
from chroma_runbook.validation.sides import CollectionData
from chroma_runbook.validation.thresholds import merge_thresholds
from chroma_runbook.io.values import FLOAT_MAX_ULP, floats_equal, ulp_distance, values_equal
from chroma_runbook.migrate.verify import _compare

# Measured on chromadb 1.5.9: written by the client, stored by the server 2 ulp away.
WRITTEN, STORED = 5.660460279242564e-10, 5.660460279242562e-10


def record(meta: dict) -> Record:
    return Record(id="r1", embedding=np.ones(3, dtype=np.float32), document="d", metadata=meta)


def test_verify_accepts_a_float_the_server_re_rounded():
    assert ulp_distance(WRITTEN, STORED) == 2 <= FLOAT_MAX_ULP
    assert _compare(record({"ratio": WRITTEN}), record({"ratio": STORED}), "l2") is None


def test_verify_and_validate_keep_ints_bools_strings_exact():
    big = 2**53 + 1                     # a double cannot tell it from 2**53
    assert not values_equal(big, 2**53) and values_equal(big, big)
    assert _compare(record({"n": big}), record({"n": 2**53}), "l2") == "metadata differs in ['n']"
    assert _compare(record({"flag": True}), record({"flag": 1}), "l2") == "metadata differs in ['flag']"
    assert _compare(record({"x": 1}), record({"x": 1.0}), "l2") == "metadata differs in ['x']"
    assert not values_equal("é", "e\u0301")          # NFC vs NFD: different strings
    assert not floats_equal(1.0, np.nextafter(1.0, 2.0) + 8 * np.spacing(1.0))
    assert floats_equal(float("nan"), float("nan")) and not floats_equal(float("inf"), 1e308)


def coll(name, ids, docs=None, metas=None):
    return CollectionData(name, "l2", list(ids), np.ones((len(ids), 2), dtype=np.float32),
                          docs or [f"{name} {i}" for i in ids], metas or [{"k": 1} for _ in ids])


def context(source, target):
    transformer = Transformer.from_options(None, None)
    return Context(source, target, build_expectation(transformer, source), transformer, merge_thresholds({}))


def _pass_rate(ctx):
    checks = [check_counts, check_embeddings, check_metadata, check_distribution, check_duplicates]
    return _record_pass_rate(ctx, {result.name: result for result in (check(ctx) for check in checks)})


def test_an_id_the_source_repeats_across_collections_is_no_duplicate():
    source = {"a": coll("a", ["x", "y"]), "b": coll("b", ["x", "z"])}
    target = {"a": coll("a", ["x", "y"]), "b": coll("b", ["x", "z"])}
    ctx = context(source, target)
    result = check_duplicates(ctx)
    assert result.status == "PASSED" and result.figures["duplicate_ids"] == 0
    assert result.figures["source_repeated_ids"] == 1
    assert _pass_rate(ctx) == 100.0


def test_an_id_copied_into_a_collection_beyond_the_source_is_a_duplicate():
    source = {"a": coll("a", ["x", "y"]), "b": coll("b", ["z"])}
    target = {"a": coll("a", ["x", "y"]), "b": coll("b", ["z", "x"], docs=["b z", "a x"])}
    ctx = context(source, target)
    result = check_duplicates(ctx)
    assert result.status == "FAILED" and result.figures["duplicate_ids"] == 1
    assert result.failed_ids == {("b", "x")}          # the surplus copy, not the legitimate one
    assert _pass_rate(ctx) == 100.0                   # (b, x) is no expected record: the others all pass


def test_a_record_lost_in_one_collection_is_not_found_through_its_namesake():
    source = {"a": coll("a", ["x", "y"]), "b": coll("b", ["x", "z"])}
    target = {"a": coll("a", ["x", "y"]), "b": coll("b", ["z"])}
    ctx = context(source, target)
    counts = check_counts(ctx)
    assert counts.figures["lost"] == 1 and counts.failed_ids == {("b", "x")}
    assert _pass_rate(ctx) == 75.0                    # 3 of 4 (collection, id) records
