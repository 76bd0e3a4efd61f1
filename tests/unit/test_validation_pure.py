"""Pure functions of the validation suite: thresholds, decisions, neighbours, filters, inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from chroma_runbook.validation.check_field_types import field_violation
from chroma_runbook.io.values import differing_fields, values_equal
from chroma_runbook.validation.context import CheckResult
from chroma_runbook.validation.inputs import InputError, load_rejects, load_test_queries
from chroma_runbook.validation.neighbours import distances, matches_where, recall_with_ties, sample_rows
from chroma_runbook.validation.runner import decide
from chroma_runbook.validation.thresholds import (DEFAULTS, FAILED, PASSED, SKIPPED, WARNING, ThresholdError,
                                                  grade_high, merge_thresholds, worst)
from chroma_runbook.migrate.profile import parse_field


def test_seed_defaults():
    assert DEFAULTS["max_data_loss_pct"] == 5.0 and DEFAULTS["max_semantic_divergence_pct"] == 20.0
    assert (DEFAULTS["pass_rate_pass_pct"], DEFAULTS["pass_rate_warn_pct"]) == (99.0, 95.0)
    assert (DEFAULTS["metadata_pass_pct"], DEFAULTS["metadata_warn_pct"]) == (100.0, 99.0)
    assert DEFAULTS["nan_warn_pct"] == 0.1


def test_merge_thresholds_names_bad_keys():
    assert merge_thresholds({"max_data_loss_pct": 2})["max_data_loss_pct"] == 2.0
    with pytest.raises(ThresholdError, match="thresholds.nope"):
        merge_thresholds({"nope": 1})
    with pytest.raises(ThresholdError, match="thresholds.k"):
        merge_thresholds({"k": 1})
    with pytest.raises(ThresholdError, match="max_data_loss_pct must be a number"):
        merge_thresholds({"max_data_loss_pct": "5%"})
    with pytest.raises(ThresholdError, match="pass_rate_warn_pct"):
        merge_thresholds({"pass_rate_warn_pct": 99.5})


@pytest.mark.parametrize("value,strict,expected", [(100, True, PASSED), (99.5, True, PASSED), (99.0, True, WARNING),
                                                   (95.0, True, WARNING), (94.9, True, FAILED)])
def test_pass_rate_table(value, strict, expected):
    assert grade_high(value, 99.0, 95.0, strict_pass=strict) == expected


@pytest.mark.parametrize("value,expected", [(100.0, PASSED), (99.5, WARNING), (99.0, WARNING), (98.9, FAILED)])
def test_metadata_table(value, expected):
    assert grade_high(value, 100.0, 99.0) == expected


def test_worst_ignores_skipped():
    assert worst(PASSED, SKIPPED) == PASSED and worst(WARNING, PASSED) == WARNING
    assert worst(FAILED, WARNING) == FAILED and worst(SKIPPED) == SKIPPED


def result(name, status):
    return CheckResult(name, name, status, "")


def test_decide_orders_reasons_as_the_seed():
    t = merge_thresholds({})
    checks = [result("count_verification", FAILED), result("embedding_integrity", PASSED),
              result("duplicate_detection", FAILED)]
    status, reasons = decide(checks, 7.0, 25.0, PASSED, t)
    assert status == FAILED
    assert reasons == ["Data Loss Detected", "Search Results Diverged", "Chunk Count Mismatch", "Duplicate IDs Found"]
    status, reasons = decide([result("count_verification", PASSED), result("metadata_completeness", WARNING)],
                             0.0, 1.0, PASSED, t)
    assert (status, reasons) == (WARNING, [])
    assert decide([result("x", PASSED)], 0.0, 0.0, FAILED, t)[1] == ["Validation Pass Rate Too Low"]


def test_distances_match_chroma_definitions():
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    v = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    assert np.allclose(distances(q, v, "l2"), [[1.0, 2.0, 1.0]])
    assert np.allclose(distances(q, v, "cosine"), [[0.0, 1.0, 1 - 1 / np.sqrt(2)]], atol=1e-6)
    assert np.allclose(distances(q, v, "ip"), [[-1.0, 1.0, 0.0]])


def test_recall_with_ties_counts_equal_distances():
    dist = np.array([[0.0, 0.5, 0.5, 0.9]])
    members = {"a": 0, "b": 1, "c": 2, "d": 3}
    assert recall_with_ties([["a", "c"]], members, dist, 2) == [1.0]    # c ties with b
    assert recall_with_ties([["a", "d"]], members, dist, 2) == [0.5]
    assert recall_with_ties([["a", "zz"]], members, dist, 2) == [0.5]   # unknown id is wrong


def test_sample_rows_is_deterministic():
    a = sample_rows(1000, 50, np.random.default_rng(42))
    b = sample_rows(1000, 50, np.random.default_rng(42))
    assert (a == b).all() and len(set(a.tolist())) == 50
    assert sample_rows(10, 50, np.random.default_rng(0)).tolist() == list(range(10))


def test_matches_where():
    meta = {"language": "en", "score": 0.7, "disputed": False}
    assert matches_where(meta, {"language": "en"})
    assert not matches_where(meta, {"language": "es"})
    assert matches_where(meta, {"$and": [{"score": {"$gte": 0.5}}, {"language": {"$in": ["en", "es"]}}]})
    assert matches_where(meta, {"$or": [{"score": {"$gt": 0.9}}, {"disputed": False}]})
    assert matches_where(meta, {"author": {"$ne": "x"}}) and not matches_where(meta, {"author": "x"})
    with pytest.raises(ValueError, match=r"\$regex"):
        matches_where(meta, {"language": {"$regex": "e"}})


def test_values_equal_and_differing_fields():
    assert values_equal(0.1 + 0.2, 0.3) and not values_equal(True, 1) and not values_equal(1, "1")
    assert differing_fields({"a": 1, "b": "x"}, {"a": 1, "b": "y", "c": 2}) == ["b", "c"]


def test_field_violation():
    rule = parse_field({"name": "score", "type": "float", "range": [0.0, 1.0]}, "f")
    assert field_violation(rule, 0.5) is None and field_violation(rule, 1) is None
    assert field_violation(rule, 1.5) == "range" and field_violation(rule, "high") == "type"
    assert field_violation(rule, True) == "type"
    lang = parse_field({"name": "language", "type": "str", "allowed": ["en", "es"]}, "f")
    assert field_violation(lang, "xx") == "allowed"
    uri = parse_field({"name": "u", "type": "str", "regex": "^if://"}, "f")
    assert field_violation(uri, "http://x") == "format"


def test_load_rejects(tmp_path):
    path = tmp_path / "rejects.jsonl"
    path.write_text(json.dumps({"id": "a", "issues": ["zero_vector"]}) + "\n\n" + json.dumps({"id": "b"}) + "\n")
    assert load_rejects(str(path)) == {"a": ["zero_vector"], "b": ["rejected"]}
    path.write_text("{not json\n")
    with pytest.raises(InputError, match="rejects_path .* line 1"):
        load_rejects(str(path))
    with pytest.raises(InputError, match="does not exist"):
        load_rejects(str(tmp_path / "missing"))


def test_load_test_queries(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"queries": [{"name": "x", "embedding": [0.1, 0.2], "where": {"language": "en"}}]}))
    assert load_test_queries(str(path))[0]["name"] == "x"
    path.write_text(json.dumps([{"query": "API authentication"}]))
    with pytest.raises(InputError, match="entry 0: 'embedding'"):
        load_test_queries(str(path))
