"""Restoring a logical snapshot into a Chroma server.

Order of work, so that a bad snapshot never touches the server:
1. verify the manifest and every checksum (any changed byte -> refused, file named);
2. check the target: an existing same-named collection is an error unless ``replace``;
3. (check mode stops here and reports the plan)
4. per collection: drop it if ``replace``, recreate it with its configuration and
   metadata, load records in batches, then compare the count with the manifest.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from .manifest import SnapshotError, load_manifest, verify_snapshot

DEFAULT_BATCH_SIZE = 1000


class RestoreRefused(Exception):
    """The restore cannot go ahead; nothing has been written."""


class RestoreFailed(Exception):
    """Loading failed part-way; the message names the collection and batch (rerun with replace=true)."""


@dataclass
class RestoreResult:
    """What a restore did (or would do in check mode)."""

    path: str
    snapshot_id: str
    changed: bool
    verified_files: int = 0
    verified_bytes: int = 0
    restored: dict[str, int] = field(default_factory=dict)
    replaced: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "snapshot_id": self.snapshot_id,
            "changed": self.changed,
            "verified_files": self.verified_files,
            "verified_bytes": self.verified_bytes,
            "restored": dict(self.restored),
            "replaced": list(self.replaced),
            "total_records": sum(self.restored.values()),
            "duration_seconds": round(self.duration_seconds, 3),
            "message": self.message,
        }


def creation_configuration(config_json: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The part of ``configuration_json`` that ``create_collection`` accepts (index settings)."""
    if not config_json:
        return None
    out: dict[str, Any] = {}
    for index in ("hnsw", "spann"):
        settings = config_json.get(index)
        if settings:
            out[index] = {k: v for k, v in settings.items() if v is not None}
    return out or None


def select_entries(manifest: dict[str, Any], names: Optional[Sequence[str]]) -> list[dict[str, Any]]:
    """Manifest entries to restore; names absent from the snapshot are an error."""
    entries = {c["name"]: c for c in manifest.get("collections", [])}
    if not names:
        return [entries[n] for n in sorted(entries)]
    missing = [n for n in names if n not in entries]
    if missing:
        raise RestoreRefused(f"collections {missing} are not in the snapshot (it holds: {sorted(entries)})")
    return [entries[n] for n in names]


def iter_batches(directory: Path, entry: dict[str, Any], batch_size: int) -> Iterator[tuple[list, list, list, np.ndarray]]:
    """(ids, documents, metadatas, embeddings) batches read from the snapshot files."""
    count, dim = int(entry["count"]), int(entry.get("dimension") or 0)
    if count == 0:
        return
    vectors = np.memmap(directory / entry["files"]["embeddings"], dtype="<f4", mode="r", shape=(count, dim))
    ids: list[str] = []
    docs: list[Optional[str]] = []
    metas: list[Optional[dict]] = []
    start = 0
    with open(directory / entry["files"]["records"], "rb") as handle:
        for line in handle:
            rec = json.loads(line)
            ids.append(rec["id"])
            docs.append(rec.get("document"))
            metas.append(rec.get("metadata") or None)
            if len(ids) == batch_size:
                yield ids, docs, metas, np.array(vectors[start:start + len(ids)])
                start += len(ids)
                ids, docs, metas = [], [], []
    if ids:
        yield ids, docs, metas, np.array(vectors[start:start + len(ids)])


def add_kwargs(ids: list, docs: list, metas: list, vectors: np.ndarray) -> dict[str, Any]:
    """``add()`` arguments of one batch: documents and metadatas only when the batch has any."""
    kwargs: dict[str, Any] = {"ids": ids, "embeddings": vectors}
    if any(d is not None for d in docs):
        kwargs["documents"] = docs
    if any(m for m in metas):
        kwargs["metadatas"] = metas
    return kwargs


def _add_batch(collection: Any, ids: list, docs: list, metas: list, vectors: np.ndarray, batch_no: int) -> None:
    """One ``add``; errors name the collection, batch and first id."""
    try:
        collection.add(**add_kwargs(ids, docs, metas, vectors))
    except Exception as exc:  # chromadb raises many types; add context and re-raise
        raise RestoreFailed(
            f"collection {collection.name}: batch {batch_no} (ids {ids[0]}..{ids[-1]}) failed to load: {exc}; "
            "the collection is incomplete, rerun with replace=true"
        ) from exc


def restore_collection(client: Any, directory: Path, entry: dict[str, Any], batch_size: int) -> int:
    """Create one collection from its snapshot files and load it; return its final count."""
    settings = json.loads((directory / entry["files"]["collection"]).read_text(encoding="utf-8"))
    collection = client.create_collection(
        name=entry["name"],
        configuration=creation_configuration(settings.get("configuration")),
        metadata=settings.get("metadata") or None,
        embedding_function=None,
    )
    for batch_no, (ids, docs, metas, vectors) in enumerate(iter_batches(directory, entry, batch_size), start=1):
        _add_batch(collection, ids, docs, metas, vectors, batch_no)
    final = int(collection.count())
    if final != int(entry["count"]):
        raise RestoreFailed(f"collection {entry['name']}: {final} records after restore, snapshot has {entry['count']}")
    return final


def restore_snapshot(
    client: Any,
    directory: Path,
    names: Optional[Sequence[str]] = None,
    replace: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    check_mode: bool = False,
) -> RestoreResult:
    """Verify, then (unless ``check_mode``) restore the chosen collections."""
    started = time.monotonic()
    directory = Path(directory)
    if batch_size < 1:
        raise RestoreRefused(f"batch_size must be >= 1, got {batch_size}")
    verified = verify_snapshot(directory)
    if verified.kind != "logical":
        raise RestoreRefused(f"{directory} is a {verified.kind} snapshot; restore it with persist_dir")
    manifest = load_manifest(directory)
    entries = select_entries(manifest, names)
    existing = {c.name for c in client.list_collections()}
    conflicts = [e["name"] for e in entries if e["name"] in existing]
    if conflicts and not replace:
        raise RestoreRefused(
            f"collections {conflicts} already exist on the target; set replace=true to drop and restore them"
        )
    result = RestoreResult(
        path=str(directory),
        snapshot_id=verified.snapshot_id,
        changed=not check_mode,
        verified_files=verified.files_checked,
        verified_bytes=verified.bytes_checked,
        replaced=conflicts,
    )
    if check_mode:
        result.restored = {e["name"]: int(e["count"]) for e in entries}
        result.changed = bool(entries)
        result.message = (
            f"snapshot verified ({verified.files_checked} files); would restore {len(entries)} collections"
            + (f", replacing {conflicts}" if conflicts else "")
        )
        result.duration_seconds = time.monotonic() - started
        return result
    max_batch = int(client.get_max_batch_size())
    batch_size = min(batch_size, max_batch)
    for entry in entries:
        if entry["name"] in conflicts:
            client.delete_collection(entry["name"])
        result.restored[entry["name"]] = restore_collection(client, directory, entry, batch_size)
    result.duration_seconds = time.monotonic() - started
    result.message = f"restored {len(entries)} collections ({sum(result.restored.values())} records) from {directory}"
    return result


__all__ = ["RestoreFailed", "RestoreRefused", "RestoreResult", "SnapshotError", "restore_snapshot", "creation_configuration"]
