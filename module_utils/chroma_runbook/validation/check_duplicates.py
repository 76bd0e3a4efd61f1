"""Check 6, duplicate detection: an id in more target collections, or the same document on
the target more often, than the migration would have put it there.

Chroma ids are unique per collection only: an id the source holds in two collections is
legitimately in two target collections (an identity copy). Only the copies beyond what
the source's records route to count, exactly as repeated documents are treated.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Optional

from .context import CheckResult, Context
from .thresholds import FAILED, PASSED

NAME = "duplicate_detection"
TITLE = "Duplicate detection"


def _key(document: Optional[str]) -> Optional[str]:
    if document is None:
        return None
    return hashlib.blake2b(document.encode("utf-8"), digest_size=16).hexdigest()


def surplus_ids(located: dict[str, list[str]], expected: dict[str, list[str]]) -> dict[str, list[str]]:
    """id -> the target collections holding it beyond the ones the source's records route to
    (at least one holder is always allowed: a rejected or unexpected record is another check's)."""
    out: dict[str, list[str]] = {}
    for rid, holders in located.items():
        allowed = set(expected.get(rid, []))
        if len(holders) <= max(1, len(allowed)):
            continue
        out[rid] = [t for t in holders if t not in allowed] if allowed else holders[1:]
    return out


def check_duplicates(ctx: Context) -> CheckResult:
    located = ctx.located()
    surplus = surplus_ids(located, ctx.expectation.target_of())
    dup_raw = [(target, rid) for rid, extra in surplus.items() for target in extra]
    dup_ids = [f"{rid} (in {','.join(located[rid])})" for rid in surplus]
    source_repeats = sum(n - 1 for n in Counter(rid for coll in ctx.source.values() for rid in coll.ids).values()
                         if n > 1)
    expected_docs: Counter = Counter()
    for records in ctx.expectation.targets.values():
        for exp in records.values():
            key = _key(exp.document)
            if key is not None:
                expected_docs[key] += 1
    actual_docs: Counter = Counter()
    holders: dict[str, list[str]] = {}
    for name in ctx.target_names():
        coll = ctx.target.get(name)
        if coll is None:
            continue
        for rid, doc in zip(coll.ids, coll.documents):
            key = _key(doc)
            if key is None:
                continue
            actual_docs[key] += 1
            holders.setdefault(key, []).append(f"{name}/{rid}")
    dup_docs = []
    extra_copies = 0
    for key, n in actual_docs.items():
        surplus = n - expected_docs.get(key, 0)
        if surplus > 0 and n > 1:
            extra_copies += surplus
            dup_docs.append(" = ".join(holders[key][:4]))
    status = FAILED if (dup_ids or dup_docs) else PASSED
    summary = (f"{len(dup_ids)} ids found in more target collections than the source's records route to; "
               f"{extra_copies} extra copies of identical documents beyond what the source holds")
    figures = {"duplicate_ids": len(dup_ids), "duplicate_documents": len(dup_docs), "extra_copies": extra_copies,
               "source_duplicate_documents": sum(n - 1 for n in expected_docs.values() if n > 1),
               "source_repeated_ids": source_repeats}
    result = CheckResult(NAME, TITLE, status, summary, figures)
    result.add_offending("duplicate_ids", dup_ids, ctx.max_ids)
    result.failed_ids.update(dup_raw)
    result.add_offending("duplicate_documents", dup_docs, ctx.max_ids)
    if figures["source_duplicate_documents"]:
        result.notes.append(f"The source itself holds {figures['source_duplicate_documents']} repeated documents; "
                            "those copies are expected and not counted.")
    if source_repeats:
        result.notes.append(f"The source holds {source_repeats} ids again in another collection (ids are unique "
                            "per collection only); those copies are expected and not counted.")
    return result
