"""Phase 5: counts per target, and a sample compared field by field and vector by vector."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional, Sequence

import numpy as np

from ..io.paging import page_to_records
from ..io.source import INCLUDE_ALL
from ..io.values import differing_fields
from .exporter import SourceCollection
from .transform import Transformer

# Chroma may return cosine vectors a few ulps off (measured ~2.4e-7); l2/ip are bit-exact.
COSINE_ATOL = 1e-5
MAX_MISMATCHES = 20


def verify_counts(client: Any, expected: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``{target: {expected, count, ok}}``; a missing target counts 0."""
    existing = {c.name for c in client.list_collections()}
    out = {}
    for name, want in expected.items():
        count = int(client.get_collection(name).count()) if name in existing else 0
        out[name] = {"expected": want, "count": count, "ok": count == want}
    return out


def verify_sample(source_client: Any, target_client: Any, sources: Sequence[SourceCollection],
                  transformer: Transformer, sample: Sequence[Sequence[str]],
                  target_spaces: dict[str, Optional[str]]) -> dict[str, Any]:
    """Re-read each sampled record from the source, transform it again, and compare it with
    what the target holds: document, every metadata field, every vector component."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for src, rid, _target in sample:
        by_source[src].append(rid)
    spaces = {s.name: s.space for s in sources}
    mismatches: list[dict[str, Any]] = []
    compared = 0
    targets: dict[str, Any] = {}  # each target collection asked for once, not once per source feeding it
    for src, ids in by_source.items():
        page = source_client.get_collection(src).get(ids=ids, include=INCLUDE_ALL)
        expected = [transformer.transform(r, spaces.get(src)) for r in page_to_records(page, src)]
        if len(expected) != len(ids):
            found = {r.id for r in expected}
            mismatches += [{"id": i, "source_collection": src, "problem": "gone from the source"}
                           for i in ids if i not in found]
        by_target: dict[str, list[Any]] = defaultdict(list)
        for rec in expected:
            by_target[rec.target_collection].append(rec)
        for target, recs in by_target.items():
            if target not in targets:
                targets[target] = target_client.get_collection(target)
            got = targets[target].get(ids=[r.id for r in recs], include=INCLUDE_ALL)
            actual = {r.id: r for r in page_to_records(got, target)}
            for want in recs:
                compared += 1
                problem = _compare(want, actual.get(want.id), target_spaces.get(target))
                if problem:
                    mismatches.append({"id": want.id, "source_collection": src, "target_collection": target,
                                       "problem": problem})
    return {"sampled": compared, "mismatches": mismatches[:MAX_MISMATCHES], "mismatch_count": len(mismatches),
            "ok": not mismatches}


def _compare(want: Any, got: Any, space: Optional[str]) -> Optional[str]:
    if got is None:
        return "missing from the target"
    if want.document != got.document:
        return "document differs"
    keys = differing_fields(want.metadata, got.metadata)
    if keys:
        return f"metadata differs in {keys}"
    if want.embedding is None or got.embedding is None or want.embedding.shape != got.embedding.shape:
        return "embedding missing or of another dimension"
    if space == "cosine":
        if not np.allclose(want.embedding, got.embedding, rtol=0, atol=COSINE_ATOL):
            return f"embedding differs (max {float(np.max(np.abs(want.embedding - got.embedding))):.3g})"
    elif not np.array_equal(want.embedding, got.embedding):
        return f"embedding differs (max {float(np.max(np.abs(want.embedding - got.embedding))):.3g})"
    return None
