"""exact_json_bytes: JSON that parses back to an equal value (NaN, big ints, surrogates included), stable bytes."""
from __future__ import annotations

import json
import math

import pytest

from chroma_runbook.io.exact_json import exact_json_bytes, json_exact
from chroma_runbook.io.fingerprint import record_digest
from chroma_runbook.io.records import Record

VALUES = [
    None, "", "ü ∑ \n \u2028 tab\t", 0, -1, 2 ** 63 - 1, 2 ** 64 - 1, 2 ** 70, -(2 ** 70), 1.0, 0.1, 1e300, -0.0,
    True, False, [1, "a", None], {"b": 1, "a": [1.5, None]}, {"x": math.inf}, {"x": -math.inf}, "\ud800 lone",
    {"nested": {"k": [math.nan]}},
]


def same(a: object, b: object) -> bool:
    """Equality that counts NaN equal to NaN and tells -0.0 from 0.0 and 1 from 1.0 from True."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("value", VALUES + [math.nan], ids=repr)
def test_the_bytes_parse_back_to_the_same_value_and_are_stable(value: object) -> None:
    raw = exact_json_bytes(value, sort_keys=True)
    assert b"\n" not in raw                           # one JSONL line
    assert same(json.loads(raw), value)
    assert raw == exact_json_bytes(value, sort_keys=True)


def test_values_orjson_would_merge_stay_apart() -> None:
    assert exact_json_bytes({"a": None}) != exact_json_bytes({"a": math.nan})
    assert exact_json_bytes({"a": math.inf}) != exact_json_bytes({"a": None})
    assert exact_json_bytes(1) != exact_json_bytes(1.0) != exact_json_bytes(True)
    assert exact_json_bytes({"b": 1, "a": 2}, sort_keys=True) == exact_json_bytes({"a": 2, "b": 1}, sort_keys=True)
    assert json_exact({"a": [1, None]}) and not json_exact({"a": [math.nan]}) and not json_exact({1: "x"})


def test_the_fingerprint_tells_none_from_nan_in_metadata() -> None:
    one = Record(id="r", embedding=None, document="d", metadata={"score": None})
    other = Record(id="r", embedding=None, document="d", metadata={"score": math.nan})
    assert record_digest(one) != record_digest(other)
