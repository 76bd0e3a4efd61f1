"""Exact (brute-force) neighbours with numpy, and recall of an approximate answer."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

TIE_EPS = 1e-5


def distances(queries: np.ndarray, vectors: np.ndarray, space: str) -> np.ndarray:
    """(n_queries, n_vectors) distances in Chroma's definitions of l2 (squared), cosine and ip."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if space == "cosine":
        with np.errstate(divide="ignore", invalid="ignore"):
            qn = q / np.linalg.norm(q, axis=1, keepdims=True)
            vn = v / np.linalg.norm(v, axis=1, keepdims=True)
        return 1.0 - np.nan_to_num(qn @ vn.T, nan=0.0)
    dots = q @ v.T
    if space == "ip":
        return 1.0 - dots
    return (q * q).sum(axis=1, keepdims=True) - 2.0 * dots + (v * v).sum(axis=1)[None, :]


def kth_distances(dist: np.ndarray, k: int) -> np.ndarray:
    """The k-th smallest distance of each row (the exact top-k boundary)."""
    return np.partition(dist, k - 1, axis=1)[:, k - 1]


def recall_with_ties(returned: Sequence[Sequence[str]], member_index: Mapping[str, int],
                     dist: np.ndarray, k: int) -> list[float]:
    """Per query: share of the k answers that belong to the exact top-k (ties at the boundary count)."""
    bound = kth_distances(dist, k) + TIE_EPS
    out = []
    for qi, ids in enumerate(returned):
        good = 0
        for rid in list(ids)[:k]:
            col = member_index.get(rid)
            if col is not None and dist[qi, col] <= bound[qi]:
                good += 1
        out.append(good / k)
    return out


def sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` distinct row numbers out of ``n`` (all of them when n <= size), sorted."""
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def query_ids(collection: Any, queries: np.ndarray, k: int, where: Optional[dict] = None) -> list[list[str]]:
    """Ids Chroma answers for each query (embeddings only: never text)."""
    kwargs: dict[str, Any] = {"query_embeddings": queries.astype(np.float32), "n_results": k, "include": ["distances"]}
    if where:
        kwargs["where"] = where
    return [list(ids) for ids in collection.query(**kwargs)["ids"]]


def matches_where(metadata: Optional[Mapping[str, Any]], where: Optional[Mapping[str, Any]]) -> bool:
    """Evaluate a Chroma ``where`` filter on one metadata dict ($eq $ne $gt $gte $lt $lte $in $nin $and $or)."""
    if not where:
        return True
    meta = metadata or {}
    for key, cond in where.items():
        if key == "$and":
            if not all(matches_where(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches_where(meta, c) for c in cond):
                return False
        elif not _match_field(meta.get(key), cond, key in meta):
            return False
    return True


def _match_field(value: Any, cond: Any, present: bool) -> bool:
    if not isinstance(cond, Mapping):
        return present and value == cond
    for op, arg in cond.items():
        if op == "$ne":
            ok = not present or value != arg
        elif op == "$nin":
            ok = not present or value not in arg
        elif not present:
            ok = False
        elif op == "$eq":
            ok = value == arg
        elif op == "$in":
            ok = value in arg
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            try:
                ok = {"$gt": value > arg, "$gte": value >= arg, "$lt": value < arg, "$lte": value <= arg}[op]
            except TypeError:
                ok = False
        else:
            raise ValueError(f"unsupported where operator {op!r}")
        if not ok:
            return False
    return True
