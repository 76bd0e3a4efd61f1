"""The one rule for "is this metadata value what the source had?" (verify and validate share it).

Chroma 1.5.9 re-rounds full-precision float metadata when it stores it: a double
written by the client can come back up to 3 ulp (units in the last place) away,
e.g. 5.660460279242564e-10 is stored as 5.660460279242562e-10 (about one random
double in ten moves; values already rounded by a 1.x server come back unchanged).
So floats compare equal within ``FLOAT_MAX_ULP`` ulp of each other; ints (any
size), bools and strings compare exactly, and a value never equals a value of
another type (``True`` is not ``1``, ``1`` is not ``1.0``).
"""
from __future__ import annotations

import math
import struct
from typing import Any, Mapping, Optional

# A few ulp: the 1.5.9 server moves values by at most 3; 4 keeps a margin, and is still
# ~1e-15 relative, far below anything a real metadata value could mean.
FLOAT_MAX_ULP = 4


def _ordered_bits(value: float) -> int:
    """The double's bits as an integer that grows with the value (so distances count ulps)."""
    bits = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def ulp_distance(a: float, b: float) -> int:
    """How many representable doubles lie between ``a`` and ``b`` (0 when equal; +0.0 == -0.0)."""
    return abs(_ordered_bits(float(a)) - _ordered_bits(float(b)))


def floats_equal(a: float, b: float, max_ulp: int = FLOAT_MAX_ULP) -> bool:
    """``a`` and ``b`` within ``max_ulp`` ulp; NaN equals NaN, an infinity only itself."""
    if a == b:
        return True
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return False
    return ulp_distance(a, b) <= max_ulp


def values_equal(a: Any, b: Any) -> bool:
    """Type-exact equality, floats within a few ulp, lists element by element."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return floats_equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def differing_fields(expected: Optional[Mapping[str, Any]], actual: Optional[Mapping[str, Any]]) -> list[str]:
    """Metadata keys whose values differ under :func:`values_equal` (absent on one side counts)."""
    expected, actual = expected or {}, actual or {}
    keys = set(expected) | set(actual)
    return sorted(k for k in keys if k not in expected or k not in actual or not values_equal(expected[k], actual[k]))
