"""A fingerprint of a Chroma server's collections, to prove nothing was written between two moments.

Each record is hashed (id, document, metadata, float32 embedding); a collection's
fingerprint is its count and the SHA-256 of its records' hashes in id order, so the
order pages come back in does not matter, and any add, delete, update or upsert
changes it. The runbook takes one just before the snapshot and compares it with one
taken just before the cutover (the drift check): whatever the freeze method, a write
that slipped past the freeze fails the gate.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from .exact_json import exact_json_bytes
from .paging import page_to_records
from .records import Record
from .source import iter_pages, select_collections


def record_digest(record: Record) -> bytes:
    """SHA-256 of one record's content: id, document and metadata as exact JSON (1 and 1.0, True and 1,
    None and NaN stay apart; metadata keys sorted), and the embedding's float32 bytes behind a mark that
    keeps a missing embedding apart from an empty one. The drift check's fingerprint and the transform
    memo (migrate/transform_memo.py) both hash records with it."""
    digest = hashlib.sha256()
    digest.update(record.id.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(exact_json_bytes(record.document) + b"\0")
    digest.update(exact_json_bytes(record.metadata, sort_keys=True) + b"\0")
    if record.embedding is None:
        digest.update(b"\0")
    else:
        digest.update(b"\1" + np.ascontiguousarray(record.embedding, dtype=np.float32).tobytes())
    return digest.digest()


def page_digests(page: Mapping[str, Any], collection: str) -> list[tuple[str, bytes]]:
    """``(id, digest)`` of each record of one ``get()`` page."""
    return [(r.id, record_digest(r)) for r in page_to_records(dict(page), collection)]


def digests_fingerprint(pairs: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """``{count, sha256}`` of one collection from its records' ``(id, digest)`` pairs, in any order."""
    ordered = sorted(pairs)
    digest = hashlib.sha256()
    for _, one in ordered:
        digest.update(one)
    return {"count": len(ordered), "sha256": digest.hexdigest()}


def collection_fingerprint(records: Iterable[Record]) -> dict[str, Any]:
    """``{count, sha256}`` of one collection's records."""
    return digests_fingerprint((r.id, record_digest(r)) for r in records)


def assemble(per: dict[str, Any], collections: Optional[Sequence[str]]) -> dict[str, Any]:
    """The whole fingerprint from each collection's; scope: the collections asked for, or "all"
    (then a collection created later is a drift too)."""
    overall = hashlib.sha256(json.dumps(per, sort_keys=True).encode("utf-8")).hexdigest()
    return {"collections": per, "sha256": overall, "scope": sorted(collections) if collections else "all"}


def take_fingerprint(client: Any, collections: Optional[Sequence[str]] = None, page_size: int = 1000) -> dict[str, Any]:
    """The fingerprint of every collection (or those named) of ``client`` (a source.open_source reader)."""
    per: dict[str, Any] = {}
    for collection in select_collections(client, sorted(collections) if collections else None):
        per[collection.name] = digests_fingerprint(
            pair for page in iter_pages(collection, page_size) for pair in page_digests(page, collection.name))
    return assemble(per, collections)


def drift(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The collections whose fingerprint changed (added, removed or written to), by name."""
    before, now = expected.get("collections", {}), actual.get("collections", {})
    changed = []
    for name in sorted(set(before) | set(now)):
        if before.get(name) != now.get(name):
            changed.append({"collection": name, "expected": before.get(name), "actual": now.get(name),
                            "what": "created" if name not in before else "dropped" if name not in now else "written"})
    return changed
