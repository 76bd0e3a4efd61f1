"""Logical snapshots of a Chroma server: one directory, one manifest, checksums.

Layout of a snapshot directory::

    manifest.json, manifest.json.sha256
    collections/<name>/collection.json   name, metadata, configuration_json
    collections/<name>/records.jsonl     {"id", "document", "metadata"} per line
    collections/<name>/embeddings.f32    little-endian float32, count x dimension

Records are streamed page by page, so memory stays bounded by ``page_size``.
Everything is written inside a hidden temporary directory next to the
destination and renamed into place only once complete and fsync'd.
"""
from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..io import source
from ..io.clock import compact_stamp, utc_now, utc_stamp
from ..io.exact_json import exact_json_bytes
from ..io.fingerprint import assemble, digests_fingerprint, page_digests
from ..io.fsutil import HashingWriter, make_private_dir, publish_dir, remove_tree, temp_sibling, write_private_bytes
from ..io.source import iter_pages
from .manifest import FORMAT, FORMAT_VERSION, file_entry, looks_complete, write_manifest

DEFAULT_PAGE_SIZE = 1000
EMBEDDING_DTYPE = np.dtype("<f4")
DIGESTS_FILE = "digests.sha256"  # io/fingerprint.record_digest of each record, 32 bytes each, in the records' order


class SnapshotRefused(Exception):
    """The snapshot cannot be taken as asked (bad option, missing collection, ...)."""


@dataclass
class CollectionEntry:
    """What the manifest says about one collection."""

    name: str
    count: int
    dimension: Optional[int]
    space: str
    metadata: dict[str, Any]
    files: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "dimension": self.dimension,
            "space": self.space,
            "metadata": self.metadata,
            "files": self.files,
        }


@dataclass
class SnapshotResult:
    """Outcome of a snapshot (or of its plan in check mode)."""

    path: str
    snapshot_id: str
    changed: bool
    collections: dict[str, int] = field(default_factory=dict)
    total_records: int = 0
    total_bytes: int = 0
    duration_seconds: float = 0.0
    message: str = ""
    fingerprint: Optional[dict[str, Any]] = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "snapshot_id": self.snapshot_id,
            "changed": self.changed,
            "collections": dict(self.collections),
            "total_records": self.total_records,
            "total_bytes": self.total_bytes,
            "duration_seconds": round(self.duration_seconds, 3),
            "message": self.message,
            **({"fingerprint": self.fingerprint} if self.fingerprint is not None else {}),
        }


def select_collections(client: Any, names: Optional[Sequence[str]]) -> list[Any]:
    """The server's collections (sorted by name), or those named; unknown names are refused."""
    try:
        return source.select_collections(client, names, "server")
    except ValueError as exc:
        raise SnapshotRefused(str(exc)) from exc


def page_embeddings(page: dict[str, Any], collection: str, offset: int) -> np.ndarray:
    """A page's embeddings as a (n, dim) little-endian float32 matrix; errors name the record."""
    ids = page["ids"]
    raw = page.get("embeddings")
    if raw is None:
        raise SnapshotRefused(f"collection {collection}: page at offset {offset} came back without embeddings")
    for i, emb in enumerate(raw):
        if emb is None:
            raise SnapshotRefused(f"collection {collection}: record {ids[i]} has no embedding")
    try:
        matrix = np.asarray(raw, dtype=np.float64).astype(EMBEDDING_DTYPE)
    except ValueError as exc:
        raise SnapshotRefused(
            f"collection {collection}: embeddings of different lengths in the page at offset {offset}: {exc}"
        ) from exc
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise SnapshotRefused(f"collection {collection}: malformed embeddings in the page at offset {offset}")
    return matrix


def write_collection(collection: Any, root: Path, page_size: int,
                     digests: Optional[list[tuple[str, bytes]]] = None) -> tuple[CollectionEntry, dict[str, dict]]:
    """Stream one collection into ``root/collections/<name>/``; return its entry and file checksums.
    With ``digests``, each record's fingerprint digest (fingerprint.page_digests) is appended to it and
    kept beside the records, in their order (``digests.sha256``: 32 bytes a record), so that a reader of
    the snapshot (the delta, the validation under the freeze) does not hash every record again."""
    name = collection.name
    rel = f"collections/{name}"
    coll_dir = root / rel
    make_private_dir(coll_dir)
    settings = source.collection_settings(collection)
    files: dict[str, dict] = {}
    data = json.dumps(settings, indent=2, sort_keys=True).encode("utf-8")
    files[f"{rel}/collection.json"] = file_entry(*write_private_bytes(coll_dir / "collection.json", data))
    count, dimension = 0, None
    with HashingWriter(coll_dir / "records.jsonl") as records, HashingWriter(coll_dir / "embeddings.f32") as vectors, \
            HashingWriter(coll_dir / DIGESTS_FILE) if digests is not None else contextlib.nullcontext() as kept:
        for page in iter_pages(collection, page_size):
            matrix = page_embeddings(page, name, count)
            if dimension is None:
                dimension = int(matrix.shape[1])
            elif matrix.shape[1] != dimension:
                raise SnapshotRefused(
                    f"collection {name}: dimension changed from {dimension} to {matrix.shape[1]} at offset {count}"
                )
            documents = page.get("documents") or [None] * len(page["ids"])
            metadatas = page.get("metadatas") or [None] * len(page["ids"])
            lines = [
                exact_json_bytes({"id": rid, "document": doc, "metadata": meta}, sort_keys=True)
                for rid, doc, meta in zip(page["ids"], documents, metadatas)
            ]
            records.write(b"\n".join(lines) + b"\n")
            if digests is not None:
                pairs = page_digests({**page, "embeddings": matrix}, name)  # the float32 matrix, not converted again
                digests.extend(pairs)
                kept.write(b"".join(d for _, d in pairs))
            vectors.write(matrix.tobytes(order="C"))
            count += len(page["ids"])
    files[f"{rel}/records.jsonl"] = file_entry(*records.close())
    files[f"{rel}/embeddings.f32"] = file_entry(*vectors.close())
    if digests is not None:
        files[f"{rel}/{DIGESTS_FILE}"] = file_entry(*kept.close())
    entry = CollectionEntry(
        name=name,
        count=count,
        dimension=dimension,
        space=source.collection_space(collection),
        metadata=settings["metadata"],
        files={
            "collection": f"{rel}/collection.json",
            "records": f"{rel}/records.jsonl",
            "embeddings": f"{rel}/embeddings.f32",
            **({"digests": f"{rel}/{DIGESTS_FILE}"} if digests is not None else {}),
        },
    )
    return entry, files


def new_snapshot_id(now: Optional[datetime] = None) -> str:
    """``snap-YYYYmmddTHHMMSSZ-xxxxxx``."""
    return f"snap-{compact_stamp(now)}-{uuid.uuid4().hex[:6]}"


def chromadb_version() -> str:
    """Version of the chromadb library that wrote the snapshot."""
    try:
        import chromadb

        return str(chromadb.__version__)
    except ImportError:  # pragma: no cover - chromadb is a hard requirement
        return "unknown"


def check_destination(dest: Path) -> Optional[str]:
    """None if ``dest`` is free; "complete" if it already holds a snapshot; raise otherwise."""
    if not dest.exists():
        return None
    if looks_complete(dest):
        return "complete"
    raise SnapshotRefused(
        f"{dest} exists and is not a complete snapshot; move it away or choose another path"
    )


def plan_snapshot(client: Any, dest: Path, names: Optional[Sequence[str]]) -> SnapshotResult:
    """Check mode: what a snapshot would hold, without writing anything."""
    existing = check_destination(dest)
    collections = select_collections(client, names)
    counts = {c.name: int(c.count()) for c in collections}
    estimate = 0
    for coll in collections:
        estimate += counts[coll.name] * (source.peek_dimension(coll) or 0) * 4
    if existing:
        return SnapshotResult(str(dest), "", False, counts, sum(counts.values()), 0, 0.0,
                              f"{dest} already holds a complete snapshot; nothing would be written")
    return SnapshotResult(
        path=str(dest),
        snapshot_id="",
        changed=True,
        collections=counts,
        total_records=sum(counts.values()),
        total_bytes=estimate,
        message=f"would snapshot {len(counts)} collections ({sum(counts.values())} records, "
        f"~{estimate} bytes of embeddings) to {dest}",
    )


def take_snapshot(
    client: Any,
    dest: Path,
    names: Optional[Sequence[str]] = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    server_label: str = "",
    snapshot_id: Optional[str] = None,
    fingerprint: bool = False,
) -> SnapshotResult:
    """Write a logical snapshot to ``dest`` atomically (temp dir + rename). With ``fingerprint``, the
    result also holds the fingerprint (fingerprint.take_fingerprint) of exactly the records written,
    taken from the same pages (one read of the source instead of two). A snapshot already complete
    at ``dest`` is left as it is, and then no fingerprint is returned."""
    if page_size < 1:
        raise SnapshotRefused(f"page_size must be >= 1, got {page_size}")
    dest = Path(dest)
    if check_destination(dest) == "complete":
        return _existing_result(dest)
    started = time.monotonic()
    now = utc_now()
    snapshot_id = snapshot_id or new_snapshot_id(now)
    collections = select_collections(client, names)
    tmp = temp_sibling(dest)
    try:
        entries, files, per = [], {}, {}
        for coll in collections:
            digests: Optional[list[tuple[str, bytes]]] = [] if fingerprint else None
            entry, coll_files = write_collection(coll, tmp, page_size, digests)
            entries.append(entry)
            files.update(coll_files)
            if digests is not None:
                per[coll.name] = digests_fingerprint(digests)
        data_bytes = sum(f["size"] for f in files.values())
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "logical",
            "snapshot_id": snapshot_id,
            "created_at": utc_stamp(now),
            "created_unix": now.timestamp(),
            "chromadb_version": chromadb_version(),
            "server": server_label,
            "collections": [e.as_dict() for e in entries],
            # every collection of the source, or only those named (a reader of the whole source needs "all")
            "scope": "all" if not names else sorted(set(names)),
            "files": files,
            "totals": {
                "collections": len(entries),
                "records": sum(e.count for e in entries),
                "bytes": data_bytes,
            },
        }
        manifest_bytes = write_manifest(tmp, manifest)
        publish_dir(tmp, dest)
    except BaseException:
        remove_tree(tmp)
        raise
    return SnapshotResult(
        path=str(dest),
        snapshot_id=snapshot_id,
        changed=True,
        collections={e.name: e.count for e in entries},
        total_records=sum(e.count for e in entries),
        total_bytes=data_bytes + manifest_bytes,
        duration_seconds=time.monotonic() - started,
        message=f"snapshot {snapshot_id} written to {dest}",
        fingerprint=assemble(per, names) if fingerprint else None,
    )


def _existing_result(dest: Path) -> SnapshotResult:
    """Idempotency: a complete snapshot already sits at ``dest``."""
    from .manifest import load_manifest

    manifest = load_manifest(dest)
    counts = {c["name"]: int(c["count"]) for c in manifest.get("collections", [])}
    return SnapshotResult(
        path=str(dest),
        snapshot_id=str(manifest.get("snapshot_id", "")),
        changed=False,
        collections=counts,
        total_records=sum(counts.values()),
        total_bytes=int(manifest.get("totals", {}).get("bytes", 0)),
        message=f"{dest} already holds snapshot {manifest.get('snapshot_id')}; left as it is",
    )
