"""Check 7, field type validation: each profile field has its type, range, allowed value and format."""
from __future__ import annotations

from collections import Counter
from typing import Any, Optional

from ..migrate.profile import FieldRule
from .context import CheckResult, Context
from .thresholds import grade_high, pct

NAME = "field_type_validation"
TITLE = "Field type validation"

PY_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def field_violation(rule: FieldRule, value: Any) -> Optional[str]:
    """Why ``value`` breaks ``rule`` (None if it does not); bool never passes for int/float."""
    if value is None:
        return None  # absence is the completeness check's business
    if isinstance(value, bool) and rule.type != "bool":
        return "type"
    if not isinstance(value, PY_TYPES.get(rule.type, (object,))):
        return "type"
    if rule.range is not None:
        low, high = rule.range
        if (low is not None and value < low) or (high is not None and value > high):
            return "range"
    if rule.allowed is not None and value not in rule.allowed:
        return "allowed"
    if rule.regex is not None and not rule.regex.search(str(value)):
        return "format"
    return None


def check_field_types(ctx: Context) -> CheckResult:
    bad: list[str] = []
    by_field: Counter = Counter()
    checked = values = 0
    failed: set[tuple[str, str]] = set()
    for name in ctx.target_names():
        if name not in ctx.target:
            continue
        rules = ctx.transformer.field_rules(name)
        if not rules:
            continue
        coll = ctx.target[name]
        for row, rid in enumerate(coll.ids):
            meta = coll.metadatas[row] or {}
            checked += 1
            problems = []
            for field_name, rule in rules.items():
                if field_name not in meta:
                    continue
                values += 1
                why = field_violation(rule, meta[field_name])
                if why:
                    problems.append(f"{field_name}:{why}")
            if problems:
                failed.add((name, rid))
                bad.append(f"{rid} ({','.join(problems[:4])})")
                by_field.update(problems)
    valid_pct = 100.0 - pct(len(bad), checked) if checked else 100.0
    t = ctx.thresholds
    status = grade_high(valid_pct, t["field_types_pass_pct"], t["field_types_warn_pct"])
    summary = (f"{checked} records, {values} field values checked against the profile's types, ranges, "
               f"allowed values and formats: {len(bad)} records with violations ({valid_pct:.2f}% valid)")
    figures = {"records_checked": checked, "values_checked": values, "records_with_violations": len(bad),
               "valid_percentage": round(valid_pct, 4), "violations_by_field": dict(by_field)}
    result = CheckResult(NAME, TITLE, status, summary, figures)
    result.add_offending("violations", bad, ctx.max_ids)
    result.failed_ids.update(failed)
    if not checked:
        result.notes.append("No schema profile rules apply to the target collections.")
    return result
