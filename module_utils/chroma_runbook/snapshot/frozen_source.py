"""The frozen source, read from its snapshot instead of its server.

A logical snapshot taken under the write freeze holds every record of the source at the
freeze moment, checksummed; the gate's drift check later proves the live source still equals
it. The steps under the freeze that read every record (the migration's delta, its verification
sample) can therefore read these local files instead of paging through the server: the
embeddings are a float32 matrix on disk, not JSON to parse.

:class:`SnapshotSource` offers the part of the source reader's interface (io/source.py) those
steps use - ``list_collections()``, ``get_collection(name)``, ``heartbeat()`` and collections
with ``name``, ``id``, ``metadata``, ``configuration_json``, ``count()`` and ``get(ids |
limit+offset, include)`` - over a snapshot whose manifest and every checksum were verified
when it was opened. It answers no queries (the server does).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..io.paging import RECORD_DIGESTS
from .manifest import RECORD_DIGEST_BYTES, SnapshotError, load_manifest, verify_snapshot

ALL = "all"
_INCLUDE_ALL = ("embeddings", "documents", "metadatas")


class SnapshotCollection:
    """One collection of a verified snapshot; its records are loaded on first use."""

    def __init__(self, directory: Path, entry: dict[str, Any]) -> None:
        self.name = str(entry["name"])
        self._directory, self._entry = directory, entry
        settings = json.loads((directory / entry["files"]["collection"]).read_text(encoding="utf-8"))
        self.id = self.name
        self.metadata: dict[str, Any] = dict(settings.get("metadata") or {})
        self.configuration_json: Optional[dict[str, Any]] = settings.get("configuration")
        self._count = int(entry["count"])
        self._ids: Optional[list[str]] = None
        self._documents: list[Optional[str]] = []
        self._metadatas: list[Optional[dict[str, Any]]] = []
        self._vectors: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self._row: dict[str, int] = {}
        self._digests: Optional[list[bytes]] = None  # each record's record_digest, when the snapshot kept them
        self._lock = threading.Lock()

    def count(self) -> int:
        return self._count

    def _load(self) -> None:
        """Read the collection's files once (the migration's page readers are threads)."""
        with self._lock:
            if self._ids is None:
                self._read_files()

    def _read_files(self) -> None:
        entry, directory = self._entry, self._directory
        dim = int(entry.get("dimension") or 0)
        ids: list[str] = []
        documents: list[Optional[str]] = []
        metadatas: list[Optional[dict[str, Any]]] = []
        with open(directory / entry["files"]["records"], "rb") as handle:
            for line in handle:
                record = json.loads(line)
                ids.append(record["id"])
                documents.append(record.get("document"))
                metadatas.append(record.get("metadata"))
        if len(ids) != self._count:
            raise SnapshotError(f"collection {self.name}: {len(ids)} records in the snapshot's records file, "
                                f"the manifest says {self._count}")
        if self._count:
            self._vectors = np.fromfile(directory / entry["files"]["embeddings"], dtype="<f4").reshape(self._count, dim)
        if entry["files"].get("digests"):
            raw = (directory / entry["files"]["digests"]).read_bytes()
            self._digests = [raw[i:i + RECORD_DIGEST_BYTES] for i in range(0, len(raw), RECORD_DIGEST_BYTES)]
            if len(self._digests) != self._count:
                raise SnapshotError(f"collection {self.name}: {len(self._digests)} record digests in the snapshot, "
                                    f"the manifest says {self._count} records")
        self._documents, self._metadatas = documents, metadatas
        self._row = {rid: i for i, rid in enumerate(ids)}
        self._ids = ids

    def get(self, ids: Optional[Sequence[str]] = None, limit: Optional[int] = None, offset: Optional[int] = None,
            include: Sequence[str] = _INCLUDE_ALL, **_: Any) -> dict[str, Any]:
        """Records by ``ids`` (those the snapshot holds, in the order asked) or a ``limit``/``offset``
        page in the order the server gave them when the snapshot was taken; with each record's digest
        under ``RECORD_DIGESTS`` when the snapshot kept them."""
        self._load()
        assert self._ids is not None
        if ids is not None:
            rows = [self._row[i] for i in ids if i in self._row]
            vectors = self._vectors[rows] if rows else np.zeros((0, 0), dtype=np.float32)
        else:
            first = min(self._count, max(0, int(offset or 0)))
            last = self._count if limit is None else min(self._count, first + int(limit))
            rows = list(range(first, last))
            vectors = self._vectors[first:last]
        return {
            "ids": [self._ids[r] for r in rows],
            "embeddings": vectors if "embeddings" in include else None,
            "documents": [self._documents[r] for r in rows] if "documents" in include else None,
            "metadatas": [self._metadatas[r] for r in rows] if "metadatas" in include else None,
            "include": list(include),
            **({RECORD_DIGESTS: [self._digests[r] for r in rows]} if self._digests is not None else {}),
        }

    def query(self, *_: Any, **__: Any) -> dict[str, Any]:
        raise NotImplementedError(f"collection {self.name}: a snapshot answers no queries; ask the server")


class SnapshotSource:
    """A verified logical snapshot, read like the source it was taken from."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.kind = verify_snapshot(self.directory).kind  # the manifest and every file's checksum
        manifest = load_manifest(self.directory)
        self.snapshot_id = str(manifest.get("snapshot_id", ""))
        self.scope = manifest.get("scope")
        self.label = f"snapshot {self.snapshot_id} ({self.directory})"
        entries = manifest["collections"] if self.kind == "logical" else []
        self._collections = {str(e["name"]): SnapshotCollection(self.directory, e) for e in entries}

    def covers(self, wanted: Optional[Sequence[str]]) -> Optional[str]:
        """None when the snapshot holds every collection a reader of ``wanted`` (None: all of the
        source's) would read; else why not. A snapshot of some collections cannot stand for all."""
        if self.kind != "logical":
            return f"snapshot {self.snapshot_id} is a {self.kind} snapshot; records are read from a logical one"
        if wanted is None:
            return None if self.scope == ALL else (
                f"snapshot {self.snapshot_id} holds {sorted(self._collections)} only "
                f"(scope {self.scope or 'not recorded'}), not every collection of the source")
        missing = [n for n in wanted if n not in self._collections]
        return f"snapshot {self.snapshot_id} does not hold collections {missing}" if missing else None

    def heartbeat(self) -> int:
        return 0

    def list_collections(self) -> list[SnapshotCollection]:
        return [self._collections[n] for n in sorted(self._collections)]

    def get_collection(self, name: str, **_: Any) -> SnapshotCollection:
        try:
            return self._collections[name]
        except KeyError:
            raise ValueError(f"collection {name} does not exist in snapshot {self.snapshot_id}") from None
