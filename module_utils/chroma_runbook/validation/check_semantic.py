"""Check 4, semantic search equivalence.

HNSW is approximate, so the target's answers are never compared with the
source's answers. Both sides are measured against exact neighbours computed
with numpy: on each source collection (the baseline recall of the old indexes)
and on each target collection (exact neighbours among the source vectors of the
records routed there). Divergence is the share of the source's recall that the
target lost: max(0, (source - target) / source) in percent.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

from .context import CheckResult, Context
from .neighbours import distances, matches_where, query_ids, recall_with_ties, sample_rows
from .thresholds import FAILED, PASSED, WARNING, worst

NAME = "semantic_search_equivalence"
TITLE = "Semantic search equivalence"


def _measure(handle: Any, members: np.ndarray, ids: list[str], queries: np.ndarray, space: str,
             k: int, where: Optional[dict] = None) -> list[float]:
    """Recall@k of ``handle``'s answers for ``queries`` against exact neighbours among ``members``."""
    k_eff = min(k, len(ids))
    if k_eff == 0 or len(queries) == 0:
        return []
    if handle is None:
        return [0.0] * len(queries)
    dist = distances(queries, members, space)
    try:
        returned = query_ids(handle, queries, k_eff, where)
    except Exception:  # noqa: BLE001 - a collection that cannot answer (wrong dimension, gone) finds nothing
        return [0.0] * len(queries)
    return recall_with_ties(returned, {rid: i for i, rid in enumerate(ids)}, dist, k_eff)


def _target_members(ctx: Context, name: str) -> tuple[list[str], np.ndarray, list[Any]]:
    """Ids, source vectors and expected metadata of the records ``name`` must hold."""
    expected = ctx.expectation.targets.get(name, {})
    ids = list(expected)
    if not ids:
        return ids, np.zeros((0, 0), dtype=np.float32), []
    vectors = np.stack([ctx.source[e.source_collection].vectors[e.source_row] for e in expected.values()])
    return ids, vectors, [e.metadata for e in expected.values()]


def _target_space(ctx: Context, name: str) -> str:
    if name in ctx.target:
        return ctx.target[name].space
    feeders = [s for s, t in ctx.expectation.source_targets_of.items() if name in t]
    return ctx.transformer.target_space(name, ctx.source[feeders[0]].space if feeders else None) or "l2"


def _sampled(ctx: Context, rng: np.random.Generator) -> tuple[dict, dict]:
    """Recall per sampled query, per source and per target collection (queries sent in parallel)."""
    jobs: list[tuple[str, str, Any, np.ndarray, list[str], np.ndarray, str]] = []
    for name, coll in ctx.source.items():
        rows = sample_rows(coll.count, ctx.sample_size, rng)
        jobs.append(("source", name, coll.handle, coll.vectors, coll.ids, coll.vectors[rows], coll.space))
    for name in sorted(ctx.expectation.targets):
        ids, members, _ = _target_members(ctx, name)
        rows = sample_rows(len(ids), ctx.sample_size, rng)
        handle = ctx.target[name].handle if name in ctx.target else None
        jobs.append(("target", name, handle, members, ids, members[rows], _target_space(ctx, name)))
    with ThreadPoolExecutor(max_workers=4) as pool:
        recalls = list(pool.map(lambda job: _measure(job[2], job[3], job[4], job[5], job[6], ctx.k), jobs))
    source_recall = {job[1]: r for job, r in zip(jobs, recalls) if job[0] == "source"}
    target_recall = {job[1]: r for job, r in zip(jobs, recalls) if job[0] == "target"}
    return source_recall, target_recall


def _file_queries(ctx: Context) -> list[dict[str, Any]]:
    """Recall of each test query (file) on each target collection it applies to."""
    outcomes = []
    for qi, query in enumerate(ctx.test_queries):
        label = str(query.get("name") or query.get("query") or query.get("id") or f"query[{qi}]")
        vector = np.asarray(query["embedding"], dtype=np.float32)[None, :]
        where = query.get("where")
        k = int(query.get("k") or ctx.k)
        names = [query["collection"]] if query.get("collection") else sorted(ctx.expectation.targets)
        recalls = {}
        for name in names:
            ids, members, metas = _target_members(ctx, name)
            keep = [i for i, m in enumerate(metas) if matches_where(m, where)]
            if not keep:
                continue
            if members.shape[1] != vector.shape[1]:
                raise ValueError(f"test query {label}: embedding has {vector.shape[1]} dimensions, "
                                 f"collection {name} has {members.shape[1]}")
            sub_ids = [ids[i] for i in keep]
            handle = ctx.target[name].handle if name in ctx.target else None
            got = _measure(handle, members[keep], sub_ids, vector, _target_space(ctx, name), k, where)
            recalls[name] = round(got[0], 4) if got else 0.0
        works = bool(recalls) and min(recalls.values()) >= ctx.thresholds["min_query_recall"]
        outcomes.append({"query": label, "where": where, "recall": recalls, "works": works})
    return outcomes


def _mean(values: list[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


def check_semantic(ctx: Context) -> CheckResult:
    rng = np.random.default_rng(ctx.seed)
    source_recall, target_recall = _sampled(ctx, rng)
    src = _mean([r for v in source_recall.values() for r in v])
    tgt = _mean([r for v in target_recall.values() for r in v])
    divergence = 0.0
    if src and tgt is not None:
        divergence = round(max(0.0, (src - tgt) / src) * 100.0, 4)
    t = ctx.thresholds
    if divergence > t["max_semantic_divergence_pct"]:
        status = FAILED
    elif divergence > t["warn_semantic_divergence_pct"]:
        status = WARNING
    else:
        status = PASSED
    outcomes = _file_queries(ctx)
    working = sum(1 for o in outcomes if o["works"])
    if outcomes:
        ratio = working / len(outcomes)
        file_status = PASSED if ratio == 1 else (WARNING if ratio >= t["query_pass_warn_ratio"] else FAILED)
        status = worst(status, file_status)
    weak = [f"{name}: recall {np.mean(v):.3f}" for name, v in target_recall.items()
            if v and src and np.mean(v) < src * (1 - t["warn_semantic_divergence_pct"] / 100)]
    summary = (f"recall@{ctx.k} against exact neighbours: source {src if src is None else round(src, 4)}, "
               f"target {tgt if tgt is None else round(tgt, 4)}, divergence {divergence}%"
               + (f"; test queries working {working}/{len(outcomes)}" if outcomes else ""))
    figures = {
        "k": ctx.k,
        "sample_size": ctx.sample_size,
        "seed": ctx.seed,
        "source_recall": None if src is None else round(src, 6),
        "target_recall": None if tgt is None else round(tgt, 6),
        "semantic_divergence_percentage": divergence,
        "per_source_collection": {n: {"queries": len(v), "recall": round(float(np.mean(v)), 6) if v else None}
                                  for n, v in source_recall.items()},
        "per_target_collection": {n: {"queries": len(v), "recall": round(float(np.mean(v)), 6) if v else None}
                                  for n, v in target_recall.items()},
        "test_queries": outcomes,
        "test_queries_working": working,
        "test_queries_total": len(outcomes),
    }
    result = CheckResult(NAME, TITLE, status, summary, figures)
    result.add_offending("weak_collections", weak, ctx.max_ids)
    result.add_offending("failing_test_queries", [o["query"] for o in outcomes if not o["works"]], ctx.max_ids)
    return result
