"""Check 5, collection distribution: each target collection holds what routing predicts."""
from __future__ import annotations

from .context import CheckResult, Context
from .thresholds import FAILED, PASSED, WARNING

NAME = "collection_distribution"
TITLE = "Collection distribution"


def check_distribution(ctx: Context) -> CheckResult:
    located = ctx.located()
    per_target = {}
    misrouted: list[str] = []
    result_ids: list[tuple[str, str]] = []
    mismatched: list[str] = []
    for name in ctx.target_names():
        expected = ctx.expectation.targets.get(name, {})
        actual = ctx.target[name].count if name in ctx.target else 0
        wrong_place = [rid for rid in expected if name not in located.get(rid, [name]) and located.get(rid)]
        result_ids.extend((name, rid) for rid in wrong_place)
        misrouted.extend(f"{rid} (in {','.join(located[rid])}, expected {name})" for rid in wrong_place)
        per_target[name] = {
            "expected": len(expected),
            "actual": actual,
            "match": actual == len(expected),
        }
        if actual != len(expected):
            mismatched.append(name)
    missing_collections = [n for n in ctx.expectation.targets if n not in ctx.target]
    warn_at = int(ctx.thresholds["count_mismatch_warn_collections"])
    if misrouted or missing_collections or len(mismatched) > warn_at:
        status = FAILED
    elif mismatched:
        status = WARNING
    else:
        status = PASSED
    total = len(per_target)
    summary = (
        f"{total - len(mismatched)}/{total} target collections hold the predicted count; "
        f"{len(misrouted)} records in the wrong collection; {len(missing_collections)} collections missing"
    )
    figures = {
        "collections_matching": total - len(mismatched),
        "collections_total": total,
        "per_target": per_target,
        "missing_collections": missing_collections,
        "misrouted": len(misrouted),
        "source_feeds": {s: sorted(t) for s, t in ctx.expectation.source_targets_of.items()},
    }
    result = CheckResult(NAME, TITLE, status, summary, figures)
    result.add_offending("misrouted", misrouted, ctx.max_ids)
    result.failed_ids.update(result_ids)
    result.add_offending("mismatched_collections", mismatched, ctx.max_ids)
    return result
