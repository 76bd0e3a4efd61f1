"""Check 8, citation references: the profile's unique fields (e.g. if_citation_uri)
are present, well-formed and unique across every target collection."""
from __future__ import annotations

from .context import CheckResult, Context
from .thresholds import FAILED, PASSED, SKIPPED

NAME = "citation_references"
TITLE = "Citation references"


def check_citations(ctx: Context) -> CheckResult:
    fields = ctx.transformer.unique_fields()
    if not fields:
        result = CheckResult(NAME, TITLE, SKIPPED,
                             "the schema profile declares no unique citation field; nothing to check")
        return result
    missing: list[str] = []
    malformed: list[str] = []
    duplicates: list[str] = []
    per_field = {}
    failed: set[tuple[str, str]] = set()
    for field_name in fields:
        seen: dict[object, str] = {}
        counts = {"present": 0, "missing": 0, "malformed": 0, "duplicate": 0}
        for name in ctx.target_names():
            if name not in ctx.target:
                continue
            rule = ctx.transformer.field_rules(name).get(field_name)
            if rule is None:
                continue
            coll = ctx.target[name]
            for row, rid in enumerate(coll.ids):
                value = (coll.metadatas[row] or {}).get(field_name)
                if value is None:
                    counts["missing"] += 1
                    failed.add((name, rid))
                    missing.append(f"{rid} ({field_name})")
                    continue
                counts["present"] += 1
                if rule.regex is not None and not rule.regex.search(str(value)):
                    counts["malformed"] += 1
                    failed.add((name, rid))
                    malformed.append(f"{rid} ({field_name}={value})")
                if value in seen:
                    counts["duplicate"] += 1
                    failed.add((name, rid))
                    duplicates.append(f"{rid} ({field_name}={value}, also on {seen[value]})")
                else:
                    seen[value] = rid
        per_field[field_name] = counts
    status = FAILED if (missing or malformed or duplicates) else PASSED
    summary = (f"fields {fields}: {sum(c['present'] for c in per_field.values())} references, "
               f"{len(missing)} missing, {len(malformed)} malformed, {len(duplicates)} duplicated")
    result = CheckResult(NAME, TITLE, status, summary, {"per_field": per_field})
    result.add_offending("missing", missing, ctx.max_ids)
    result.failed_ids.update(failed)
    result.add_offending("malformed", malformed, ctx.max_ids)
    result.add_offending("duplicate", duplicates, ctx.max_ids)
    return result
