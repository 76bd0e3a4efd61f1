"""Per-record validation: issue types that send a record to the rejects file.

Issue types (strings, counted in results and written to rejects.jsonl):
  invalid_id, invalid_document, missing_embedding, nan_embedding, inf_embedding,
  zero_vector (target space cosine), dimension_mismatch (within the target collection),
  duplicate_id (within the target collection), invalid_metadata:<key> (a value Chroma
  refuses), missing_required_field:<field>, invalid_type:<field>, out_of_range:<field>,
  not_allowed:<field>, invalid_format:<field>, duplicate_value:<field> (unique fields),
  template_error:<field>.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from ..io.records import Record
from .profile import FieldRule

RESERVED_METADATA_KEYS = ("chroma:document",)
TRUE_STRINGS = {"true", "yes", "1", "on"}
FALSE_STRINGS = {"false", "no", "0", "off"}

_MISSING = object()


def coerce(value: Any, ftype: str) -> tuple[Any, bool]:
    """Convert ``value`` to ``ftype`` when that loses nothing; (value, ok)."""
    if value is None:
        return None, True
    if ftype == "str":
        if isinstance(value, str):
            return value, True
        if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
            return str(value), True
        return value, False
    if ftype == "bool":
        if isinstance(value, bool):
            return value, True
        if isinstance(value, int) and value in (0, 1):
            return bool(value), True
        if isinstance(value, str) and value.strip().lower() in TRUE_STRINGS | FALSE_STRINGS:
            return value.strip().lower() in TRUE_STRINGS, True
        return value, False
    if isinstance(value, bool):
        return value, False
    if ftype == "int":
        if isinstance(value, int):
            return value, True
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value), True
        if isinstance(value, str):
            try:
                return int(value.strip()), True
            except ValueError:
                return value, False
        return value, False
    if ftype == "float":
        if isinstance(value, (int, float)):
            out = float(value)
            return out, math.isfinite(out)
        if isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                return value, False
            return out, math.isfinite(out)
    return value, False


def check_field(rule: FieldRule, value: Any) -> tuple[Any, Optional[str]]:
    """Range (clamp or reject), allowed values and regex of one typed field value.

    ``value`` must already be coerced to the rule's type and not None.
    Returns the (possibly clamped) value and an issue type or None.
    """
    if rule.range is not None:
        low, high = rule.range
        if (low is not None and value < low) or (high is not None and value > high):
            if rule.on_range_error == "reject":
                return value, f"out_of_range:{rule.name}"
            value = max(low, value) if low is not None else value
            value = min(high, value) if high is not None else value
            value = float(value) if rule.type == "float" else int(value)
    if rule.allowed is not None and value not in rule.allowed:
        return value, f"not_allowed:{rule.name}"
    if rule.regex is not None and not rule.regex.search(str(value)):
        return value, f"invalid_format:{rule.name}"
    return value, None


def check_identity(record: Record) -> list[str]:
    """The id must be a non-empty string; the document a string or None."""
    issues = []
    if not isinstance(record.id, str) or not record.id:
        issues.append("invalid_id")
    if record.document is not None and not isinstance(record.document, str):
        issues.append("invalid_document")
    return issues


def check_embedding(embedding: Optional[np.ndarray], space: Optional[str]) -> list[str]:
    """missing_embedding, nan_embedding, inf_embedding, zero_vector (cosine only)."""
    if embedding is None or getattr(embedding, "size", len(embedding)) == 0:
        return ["missing_embedding"]
    arr = np.asarray(embedding, dtype=np.float32)
    finite = np.isfinite(arr)
    if finite.all():
        if space == "cosine" and not arr.any():
            return ["zero_vector"]
        return []
    issues = []
    if np.isnan(arr).any():
        issues.append("nan_embedding")
    if np.isinf(arr).any():
        issues.append("inf_embedding")
    return issues


def check_metadata_values(metadata: Optional[Mapping[Any, Any]]) -> list[str]:
    """Values Chroma refuses: nested dicts, empty or mixed lists, NaN, reserved keys."""
    if not metadata:
        return []
    issues = []
    for key, value in metadata.items():
        if not isinstance(key, str) or key in RESERVED_METADATA_KEYS or not _scalar_or_list_ok(value):
            issues.append(f"invalid_metadata:{key}")
    return issues


def _scalar_ok(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, bool, int))


def _scalar_or_list_ok(value: Any) -> bool:
    if isinstance(value, list):
        if not value or any(v is None for v in value):
            return False
        first = type(value[0])
        return all(type(v) is first and _scalar_ok(v) for v in value)
    return _scalar_ok(value)


@dataclass
class RecordValidator:
    """Checks that need the records seen before: one instance per pass over the source.

    - dimension_mismatch: a record whose dimension differs from its target's
      (declared in the profile, else the first valid record routed there);
    - duplicate_id: an id already routed to the same target;
    - duplicate_value:<field>: a ``unique`` field value already used (any target).
    """

    declared_dimensions: Mapping[str, Optional[int]] = field(default_factory=dict)
    unique_fields: Iterable[str] = ()
    dimensions: dict[str, int] = field(default_factory=dict)
    _ids: dict[str, set[str]] = field(default_factory=dict)
    _unique_values: dict[str, set[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.unique_fields = tuple(self.unique_fields)
        for target, dim in self.declared_dimensions.items():
            if dim:
                self.dimensions[target] = dim

    def validate(self, record: Record) -> list[str]:
        """Add the stateful issues to ``record.issues``; remember it when it stays valid."""
        target = record.target_collection
        issues = list(record.issues)
        if record.embedding is not None and "missing_embedding" not in issues:
            expected = self.dimensions.get(target)
            if expected is not None and len(record.embedding) != expected:
                issues.append("dimension_mismatch")
        seen = self._ids.setdefault(target, set())
        if record.id in seen:
            issues.append("duplicate_id")
        unique_hits = []
        for name in self.unique_fields:
            value = (record.metadata or {}).get(name, _MISSING)
            if value is _MISSING or value is None:
                continue
            values = self._unique_values.setdefault(name, set())
            if value in values:
                issues.append(f"duplicate_value:{name}")
            else:
                unique_hits.append((values, value))
        if not issues:
            seen.add(record.id)
            for values, value in unique_hits:
                values.add(value)
            if target not in self.dimensions and record.embedding is not None:
                self.dimensions[target] = len(record.embedding)
        record.issues = issues
        return issues
