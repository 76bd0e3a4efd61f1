"""JSON bytes that give the value back exactly, fast when they can.

orjson is several times faster than the stdlib's encoder, and exact for what Chroma stores,
but it writes NaN and infinities as ``null`` and refuses integers past 64 bits, lone
surrogates and other types. :func:`exact_json_bytes` takes orjson's output unless one of
those is in the value, and the stdlib's (ASCII, NaN kept as ``NaN``) otherwise; the same value
always gives the same bytes, so digests over them are stable.
"""
from __future__ import annotations

import json
import math
from typing import Any

import orjson


def json_exact(value: Any) -> bool:
    """True when orjson gives ``value`` back exactly (no NaN/inf, ints within 64 bits, plain types)."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, int):
        return -(2 ** 63) <= value < 2 ** 64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(json_exact(v) for v in value)
    if isinstance(value, dict):
        return all(type(k) is str and json_exact(v) for k, v in value.items())
    return False


def exact_json_bytes(value: Any, sort_keys: bool = False) -> bytes:
    """``value`` as JSON (one line, UTF-8) that parses back to an equal value, NaN included."""
    try:
        raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except (TypeError, orjson.JSONEncodeError):
        raw = None
    if raw is not None and (b"null" not in raw or json_exact(value)):
        return raw
    return json.dumps(value, sort_keys=sort_keys, default=str).encode("ascii")
