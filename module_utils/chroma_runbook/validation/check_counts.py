"""Check 1, count verification: every source record is on the target or quarantined.

Data loss = source records that are neither on the target nor in the rejects file
(without a rejects file: nor rejected by the profile, as the migration would).
"""
from __future__ import annotations

from .context import CheckResult, Context
from .thresholds import FAILED, PASSED, WARNING, pct

NAME = "count_verification"
TITLE = "Count verification"


def _missing(ctx: Context) -> list[tuple[str, str, str]]:
    """(source collection, id, collection it counts under) of source records the target lacks.

    A record is found in the collection the migration puts it in; one sitting in another
    target collection that does not expect it counts as found too (misrouting is the
    distribution check's business). Ids are unique per collection only, so a record is
    never "found" through a namesake of another collection.
    """
    exp = ctx.expectation
    located = ctx.located()
    expected = exp.target_of()
    out: list[tuple[str, str, str]] = []
    for src, coll in ctx.source.items():
        for rid in coll.ids:
            target = exp.placed.get((src, rid))
            holder = ctx.target.get(target) if target else None
            if holder is not None and rid in holder.row:
                continue
            strays = [t for t in located.get(rid, []) if t not in expected.get(rid, [])]
            if not strays:
                out.append((src, rid, target or src))
    return out


def check_counts(ctx: Context) -> CheckResult:
    located = ctx.located()
    exp = ctx.expectation
    missing = _missing(ctx)
    if ctx.rejects is not None:
        quarantined = [m for m in missing if m[1] in ctx.rejects]
        lost = [m for m in missing if m[1] not in ctx.rejects]
        unconfirmed: list[tuple[str, str, str]] = []
    else:
        quarantined = []
        unconfirmed = [m for m in missing if m[:2] in exp.rejected]
        lost = [m for m in missing if m[:2] not in exp.rejected]
    expected = exp.target_of()
    source_ids = {rid for coll in ctx.source.values() for rid in coll.ids}
    unexpected = [rid for rid in located if rid not in expected and rid not in source_ids]
    rejected_ids = {rid for _src, rid in exp.rejected}
    imported_rejects = [rid for rid, held in located.items()
                        if rid in rejected_ids and [t for t in held if t not in expected.get(rid, [])]]
    target_total = sum(ctx.target[n].count for n in ctx.target)
    loss_pct = pct(len(lost), exp.source_total)
    figures = {
        "source_total": exp.source_total,
        "expected_on_target": exp.expected_total,
        "target_total": target_total,
        "found_on_target": exp.source_total - len(missing),
        "missing_from_target": len(missing),
        "quarantined_in_rejects": len(quarantined),
        "rejected_by_profile_unconfirmed": len(unconfirmed),
        "rejected_by_profile": len(exp.rejected),
        "lost": len(lost),
        "data_loss_percentage": loss_pct,
        "unexpected_on_target": len(unexpected),
        "rejected_but_imported": len(imported_rejects),
        "rejects_file_given": ctx.rejects is not None,
        "per_target": {
            name: {"expected": len(exp.targets.get(name, {})), "actual": ctx.target[name].count if name in ctx.target else 0}
            for name in ctx.target_names()
        },
    }
    if loss_pct > ctx.thresholds["max_data_loss_pct"] or lost:
        status = FAILED
    elif unexpected or imported_rejects:
        status = WARNING
    else:
        status = PASSED
    summary = (
        f"{exp.source_total} source records: {figures['found_on_target']} on the target, "
        f"{len(quarantined)} quarantined in the rejects file, "
        + (f"{len(unconfirmed)} rejected by the profile (no rejects file to confirm), " if ctx.rejects is None else "")
        + f"{len(lost)} lost ({loss_pct}%)"
    )
    result = CheckResult(NAME, TITLE, status, summary, figures)
    result.add_offending("lost", _labels(lost), ctx.max_ids)
    result.failed_ids.update((where, rid) for _src, rid, where in lost)
    result.add_offending("quarantined", _labels(quarantined), ctx.max_ids)
    result.add_offending("unexpected", unexpected, ctx.max_ids)
    result.add_offending("rejected_but_imported", imported_rejects, ctx.max_ids)
    result.notes.append(
        "Data loss counts records that are neither on the target nor safely quarantined in the rejects file; "
        "quarantined records are counted separately and are not loss."
    )
    if ctx.rejects is None and unconfirmed:
        result.notes.append(
            f"No rejects file was given: {len(unconfirmed)} missing records are ones the schema profile rejects, "
            "so they are not counted as loss; they remain in the source and the snapshot."
        )
    return result


def _labels(missing: list[tuple[str, str, str]]) -> list[str]:
    """Offending entries: the ids (the report's lists stay plain ids)."""
    return [rid for _src, rid, _where in missing]
