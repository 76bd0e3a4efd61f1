"""Check 2, embedding integrity: same vectors as the source (within tolerance), no NaN, right dimension.

Chroma re-stores cosine vectors with a drift of about one float32 ulp (~2.4e-7 on
unit vectors), so equality is |target - source| <= atol + rtol * |source|.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .context import CheckResult, Context
from .thresholds import FAILED, PASSED, WARNING, pct, worst

NAME = "embedding_integrity"
TITLE = "Embedding integrity"


def _expected_dimension(ctx: Context, target: str) -> Optional[int]:
    declared = ctx.transformer.declared_dimension(target)
    if declared:
        return declared
    feeders = sorted(ctx.expectation.source_targets_of)
    dims = {ctx.source[s].dimension for s in feeders if target in ctx.expectation.source_targets_of[s]}
    dims.discard(None)
    return dims.pop() if len(dims) == 1 else None


def _compare(ctx: Context, target: str) -> tuple[int, list[str], float]:
    """(compared, altered ids, largest difference) for the expected records present in ``target``."""
    ids, rows, sources = ctx.present_pairs(target)
    if not ids:
        return 0, [], 0.0
    tgt = ctx.target[target].vectors
    atol, rtol = ctx.thresholds["embedding_atol"], ctx.thresholds["embedding_rtol"]
    altered: list[str] = []
    largest = 0.0
    by_source: dict[str, list[int]] = {}
    for i, (src_name, _) in enumerate(sources):
        by_source.setdefault(src_name, []).append(i)
    for src_name, idx in by_source.items():
        src = ctx.source[src_name].vectors
        s_rows = np.asarray([sources[i][1] for i in idx], dtype=np.int64)
        t_rows = rows[np.asarray(idx, dtype=np.int64)]
        a, b = src[s_rows], tgt[t_rows]
        if a.shape != b.shape:  # dimension damage: every such record is altered
            altered.extend(ids[i] for i in idx)
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a - b)   # float32: the tolerance (1e-6) is far above float32 round-off here
            bad = ~(diff <= atol + rtol * np.abs(a)).all(axis=1)
        finite = diff[np.isfinite(diff)]
        if finite.size:
            largest = max(largest, float(finite.max()))
        altered.extend(ids[idx[j]] for j in np.flatnonzero(bad))
    return len(ids), altered, largest


def check_embeddings(ctx: Context) -> CheckResult:
    compared, altered, largest = 0, [], 0.0
    nan_ids: list[str] = []
    wrong_dim: list[str] = []
    failed: set[tuple[str, str]] = set()
    scanned = 0
    per_target = {}
    for name in ctx.target_names():
        if name not in ctx.target:
            continue
        coll = ctx.target[name]
        n, alt, big = _compare(ctx, name)
        compared += n
        altered += alt
        failed.update((name, rid) for rid in alt)
        largest = max(largest, big)
        scanned += coll.count
        vectors = coll.vectors
        if vectors.size:
            nan_rows = np.flatnonzero(np.isnan(vectors).any(axis=1))
            nan_ids += [coll.ids[i] for i in nan_rows]
            failed.update((name, coll.ids[i]) for i in nan_rows)
        expected_dim = _expected_dimension(ctx, name)
        if expected_dim is not None and coll.dimension is not None and coll.dimension != expected_dim:
            wrong_dim += list(coll.ids)
            failed.update((name, rid) for rid in coll.ids)
        per_target[name] = {"compared": n, "altered": len(alt), "dimension": coll.dimension,
                            "expected_dimension": expected_dim}
    nan_pct = pct(len(nan_ids), scanned)
    if nan_ids:
        nan_status = WARNING if nan_pct < ctx.thresholds["nan_warn_pct"] else FAILED
    else:
        nan_status = PASSED
    alt_status = FAILED if len(altered) > ctx.thresholds["max_altered_vectors"] else PASSED
    dim_status = FAILED if wrong_dim else PASSED
    status = worst(nan_status, alt_status, dim_status)
    summary = (
        f"{compared} vectors compared with the source: {len(altered)} altered beyond tolerance "
        f"(largest difference {largest:.3g}); {len(nan_ids)} with NaN ({nan_pct}%); "
        f"{len(wrong_dim)} with an unexpected dimension"
    )
    figures = {
        "compared": compared,
        "altered": len(altered),
        "largest_difference": largest,
        "tolerance": {"atol": ctx.thresholds["embedding_atol"], "rtol": ctx.thresholds["embedding_rtol"]},
        "nan_vectors": len(nan_ids),
        "nan_percentage": nan_pct,
        "wrong_dimension": len(wrong_dim),
        "per_target": per_target,
    }
    result = CheckResult(NAME, TITLE, status, summary, figures)
    result.add_offending("altered", altered, ctx.max_ids)
    result.failed_ids.update(failed)
    result.add_offending("nan", nan_ids, ctx.max_ids)
    result.add_offending("wrong_dimension", wrong_dim, ctx.max_ids)
    return result
