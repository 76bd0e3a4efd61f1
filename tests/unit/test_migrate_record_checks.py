"""Per-record checks: each issue type, and the stateful validator."""
from __future__ import annotations

import math

import numpy as np
import pytest

from chroma_runbook.migrate.profile import parse_field
from chroma_runbook.migrate.record_checks import (
    RecordValidator,
    check_embedding,
    check_field,
    check_identity,
    check_metadata_values,
    coerce,
)
from chroma_runbook.io.records import Record


@pytest.mark.parametrize(
    "value, ftype, expected, ok",
    [
        ("42", "int", 42, True), (3.0, "int", 3, True), (3.5, "int", 3.5, False), (True, "int", True, False),
        ("x", "int", "x", False), (2, "float", 2.0, True), ("0.5", "float", 0.5, True),
        (math.nan, "float", math.nan, False), ("true", "bool", True, True), ("No", "bool", False, True),
        (1, "bool", True, True), ("maybe", "bool", "maybe", False), (7, "str", "7", True),
        (True, "str", "True", True), ([1], "str", [1], False), (None, "int", None, True),
    ],
)
def test_coerce(value, ftype, expected, ok) -> None:
    out, good = coerce(value, ftype)
    assert good is ok
    if ok and not (isinstance(expected, float) and math.isnan(expected)):
        assert out == expected and type(out) is type(expected)


def test_range_clamp_and_reject() -> None:
    clamp = parse_field({"name": "s", "type": "float", "range": [0.0, 1.0], "on_range_error": "clamp"}, "f")
    reject = parse_field({"name": "s", "type": "float", "range": [0.0, 1.0]}, "f")
    assert check_field(clamp, 1.3) == (1.0, None)
    assert check_field(clamp, -0.2) == (0.0, None)
    assert check_field(reject, 1.3)[1] == "out_of_range:s"
    assert check_field(reject, 0.5) == (0.5, None)
    low_only = parse_field({"name": "n", "type": "int", "range": [0, None], "on_range_error": "clamp"}, "f")
    assert check_field(low_only, -4) == (0, None) and check_field(low_only, 10**9) == (10**9, None)


def test_allowed_and_regex() -> None:
    rule = parse_field({"name": "lang", "type": "str", "allowed": ["en", "es"]}, "f")
    assert check_field(rule, "fr")[1] == "not_allowed:lang"
    assert check_field(rule, "es")[1] is None
    rule = parse_field({"name": "uri", "type": "str", "regex": "^if://citation/.+$"}, "f")
    assert check_field(rule, "http://x")[1] == "invalid_format:uri"
    assert check_field(rule, "if://citation/a")[1] is None


def test_embedding_checks() -> None:
    assert check_embedding(None, "cosine") == ["missing_embedding"]
    assert check_embedding(np.array([], np.float32), "l2") == ["missing_embedding"]
    assert check_embedding(np.array([1.0, np.nan], np.float32), "l2") == ["nan_embedding"]
    assert check_embedding(np.array([np.inf, np.nan], np.float32), "l2") == ["nan_embedding", "inf_embedding"]
    assert check_embedding(np.array([-np.inf, 1.0], np.float32), "ip") == ["inf_embedding"]
    assert check_embedding(np.zeros(4, np.float32), "cosine") == ["zero_vector"]
    assert check_embedding(np.zeros(4, np.float32), "l2") == []
    assert check_embedding(np.zeros(4, np.float32), "ip") == []
    assert check_embedding(np.array([0, 0, 1e-30], np.float32), "cosine") == []


def test_metadata_values_chroma_refuses() -> None:
    good = {"s": "x", "i": 1, "f": 1.5, "b": True, "n": None, "l": ["a", "b"], "li": [1, 2]}
    assert check_metadata_values(good) == []
    bad = {"d": {"x": 1}, "e": [], "m": [1, "a"], "nan": math.nan, "chroma:document": "x", "t": (1,), "ln": [None]}
    assert sorted(check_metadata_values(bad)) == sorted(
        ["invalid_metadata:d", "invalid_metadata:e", "invalid_metadata:m", "invalid_metadata:nan",
         "invalid_metadata:chroma:document", "invalid_metadata:t", "invalid_metadata:ln"]
    )


def test_identity() -> None:
    assert check_identity(Record(id="", embedding=None)) == ["invalid_id"]
    assert check_identity(Record(id="a", embedding=None, document=b"x")) == ["invalid_document"]  # type: ignore[arg-type]
    assert check_identity(Record(id="a b/c", embedding=None, document=None)) == []


def r(rid: str, target: str, dim: int = 3, meta=None) -> Record:
    return Record(id=rid, embedding=np.ones(dim, np.float32), metadata=meta, target_collection=target)


def test_validator_dimension_from_first_valid_record_per_target() -> None:
    v = RecordValidator()
    bad_first = r("x", "t1", 3)
    bad_first.issues = ["zero_vector"]
    assert v.validate(bad_first) == ["zero_vector"]
    assert v.validate(r("a", "t1", 4)) == []
    assert v.validate(r("b", "t1", 3)) == ["dimension_mismatch"]
    assert v.validate(r("c", "t2", 3)) == []


def test_validator_declared_dimension_wins() -> None:
    v = RecordValidator(declared_dimensions={"t1": 768})
    assert v.validate(r("a", "t1", 3)) == ["dimension_mismatch"]
    assert v.validate(r("b", "t1", 768)) == []


def test_validator_duplicates_per_target_and_unique_fields() -> None:
    v = RecordValidator(unique_fields=["uri"])
    assert v.validate(r("a", "t1", meta={"uri": "u1"})) == []
    assert v.validate(r("a", "t2", meta={"uri": "u2"})) == []
    assert v.validate(r("a", "t1", meta={"uri": "u3"})) == ["duplicate_id"]
    assert v.validate(r("b", "t2", meta={"uri": "u1"})) == ["duplicate_value:uri"]
    # a rejected record does not reserve its id or value
    assert v.validate(r("c", "t1", meta={"uri": "u3"})) == []
