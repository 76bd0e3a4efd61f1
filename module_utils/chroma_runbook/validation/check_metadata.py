"""Check 3, metadata completeness: every required field of the profile is present,
and each migrated record carries the metadata the profile produces from its source."""
from __future__ import annotations

from collections import Counter

from ..io.values import differing_fields
from .context import CheckResult, Context
from .thresholds import PASSED, grade_high, pct, worst

NAME = "metadata_completeness"
TITLE = "Metadata completeness"


def check_metadata(ctx: Context) -> CheckResult:
    incomplete: list[str] = []
    mismatched: list[str] = []
    missing_by_field: Counter = Counter()
    mismatch_by_field: Counter = Counter()
    checked = compared = 0
    failed: set[tuple[str, str]] = set()
    required_by_target = {}
    for name in ctx.target_names():
        if name not in ctx.target:
            continue
        coll = ctx.target[name]
        required = ctx.transformer.required_fields(name)
        required_by_target[name] = required
        expected = ctx.expectation.targets.get(name, {})
        for row, rid in enumerate(coll.ids):
            meta = coll.metadatas[row] or {}
            checked += 1
            absent = [f for f in required if meta.get(f) is None]
            if absent:
                incomplete.append(rid)
                failed.add((name, rid))
                missing_by_field.update(absent)
            exp = expected.get(rid)
            if exp is not None:
                compared += 1
                diff = differing_fields(exp.metadata, meta)
                if diff:
                    failed.add((name, rid))
                    mismatched.append(f"{rid} ({','.join(diff[:4])})")
                    mismatch_by_field.update(diff)
    complete_pct = 100.0 - pct(len(incomplete), checked) if checked else 100.0
    match_pct = 100.0 - pct(len(mismatched), compared) if compared else 100.0
    t = ctx.thresholds
    status = worst(
        grade_high(complete_pct, t["metadata_pass_pct"], t["metadata_warn_pct"]),
        grade_high(match_pct, t["metadata_pass_pct"], t["metadata_warn_pct"]),
    ) if checked else PASSED
    n_fields = len({f for fields in required_by_target.values() for f in fields})
    summary = (
        f"{checked} target records checked against {n_fields} required fields: completeness {complete_pct:.2f}%; "
        f"{compared} compared with the profile's output: {len(mismatched)} differ ({match_pct:.2f}% match)"
    )
    figures = {
        "records_checked": checked,
        "complete_percentage": round(complete_pct, 4),
        "incomplete_records": len(incomplete),
        "missing_by_field": dict(missing_by_field),
        "records_compared": compared,
        "matching_percentage": round(match_pct, 4),
        "mismatched_records": len(mismatched),
        "mismatch_by_field": dict(mismatch_by_field),
        "required_fields": required_by_target,
    }
    result = CheckResult(NAME, TITLE, status, summary, figures)
    result.add_offending("incomplete", incomplete, ctx.max_ids)
    result.failed_ids.update(failed)
    result.add_offending("mismatched", mismatched, ctx.max_ids)
    if not any(required_by_target.values()):
        result.notes.append("The schema profile names no required fields (or no profile was given): "
                            "only the comparison with the source metadata applies.")
    return result
