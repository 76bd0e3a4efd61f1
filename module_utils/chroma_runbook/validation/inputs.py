"""Optional inputs of the validator: the migration's rejects file and a test queries file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """A bad input file; the message names the option and the line/entry."""


def load_rejects(path: str) -> dict[str, list[str]]:
    """id -> issue types, from the migration's rejects.jsonl (one JSON object per line with an ``id``)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"rejects_path {path} does not exist or is not a file")
    out: dict[str, list[str]] = {}
    with open(file, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise InputError(f"rejects_path {path} line {lineno}: not JSON ({exc})") from exc
            rid = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(rid, str):
                raise InputError(f"rejects_path {path} line {lineno}: no string 'id'")
            issues = entry.get("issues") or entry.get("reasons") or [entry.get("reason") or entry.get("issue") or "rejected"]
            out.setdefault(rid, []).extend(str(i) for i in (issues if isinstance(issues, list) else [issues]))
    return out


def load_test_queries(path: str) -> list[dict[str, Any]]:
    """Queries with embeddings: a JSON list, or ``{"queries": [...]}``.

    Each entry: ``embedding`` (list of numbers, required), optional ``name``/``query``
    (label), ``collection`` (a target collection), ``where`` (metadata filter), ``k``.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"test_queries_path {path} does not exist or is not a file")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"test_queries_path {path}: not JSON ({exc})") from exc
    queries = data.get("queries") if isinstance(data, dict) else data
    if not isinstance(queries, list):
        raise InputError(f"test_queries_path {path}: expected a list of queries or {{'queries': [...]}}")
    for i, query in enumerate(queries):
        where = f"test_queries_path {path} entry {i}"
        if not isinstance(query, dict):
            raise InputError(f"{where}: must be an object")
        emb = query.get("embedding")
        if not isinstance(emb, list) or not emb or not all(isinstance(x, (int, float)) for x in emb):
            raise InputError(f"{where}: 'embedding' must be a non-empty list of numbers "
                             "(queries are never embedded from text)")
        if query.get("where") is not None and not isinstance(query["where"], dict):
            raise InputError(f"{where}: 'where' must be a metadata filter object")
        if query.get("k") is not None and (not isinstance(query["k"], int) or query["k"] < 1):
            raise InputError(f"{where}: 'k' must be a positive integer")
    return queries
