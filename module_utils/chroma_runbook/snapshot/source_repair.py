"""Putting the source back to its snapshot without ever losing a write made after it.

The rollback's last resort. Per collection of the snapshot, the live source is read (ids,
documents and metadata; no embeddings) and compared with the snapshot's records:

- identical: nothing to do;
- it lost records and holds nothing else: the missing ids are added back from the snapshot
  (the collection, its id and every other record stay as they are);
- it holds ids the snapshot lacks, more records than the snapshot, or records whose document
  or metadata differ: the source changed after the snapshot (writes were open at some point).
  It is left alone and reported, unless ``restore_source`` asks for a whole-collection restore;
- it is gone: a whole-collection restore.

A whole-collection restore loads the snapshot into a temporary collection, verifies its count
and ids, and only then swaps names (Chroma renames keep ids and indexes): a collection that was
there keeps its records under ``<name>-before-restore-<time>``; nothing is deleted.

An unusable snapshot (manifest checksum, a file's SHA-256...) is not an error here: the result
says the source could not be checked and why, so a rollback can carry on.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..io.source import read_page
from .manifest import SnapshotError, load_manifest, verify_snapshot
from .restore import RestoreFailed, add_kwargs, creation_configuration

PAGE = 1000


@dataclass
class SnapshotRecords:
    """One collection of the snapshot, indexed by id (row = line of records.jsonl = row of embeddings.f32)."""

    entry: dict[str, Any]
    rows: dict[str, int]
    documents: list[Optional[str]]
    metadatas: list[Optional[dict[str, Any]]]


@dataclass
class CollectionCheck:
    """What was found in one source collection and what was (or would be) done about it."""

    name: str
    snapshot_count: int
    live_count: Optional[int] = None
    live_id: Optional[str] = None
    not_in_snapshot: int = 0
    lost: int = 0
    differing: int = 0
    action: str = "none"  # none | add_missing | restore | left_alone
    added: int = 0
    kept_as: Optional[str] = None
    note: str = ""

    @property
    def changed_after_snapshot(self) -> bool:
        return self.not_in_snapshot > 0 or self.differing > 0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "snapshot_count", "live_count", "live_id", "not_in_snapshot",
                                              "lost", "differing", "action", "added", "kept_as", "note")}


@dataclass
class RepairResult:
    """The outcome over every collection of the snapshot."""

    path: str
    checked: bool
    changed: bool = False
    snapshot_id: str = ""
    problem: str = ""
    collections: list[CollectionCheck] = field(default_factory=list)
    duration_seconds: float = 0.0

    def names(self, action: str) -> list[str]:
        return [c.name for c in self.collections if c.action == action]

    @property
    def ok(self) -> Optional[bool]:
        """True: the source holds the snapshot (again); False: it differs; None: not checked."""
        if not self.checked:
            return None
        return all(c.action in ("none", "add_missing", "restore") for c in self.collections)

    def summary(self) -> str:
        if not self.checked:
            return f"the source was not checked: {self.problem}"
        parts = [c.note for c in self.collections if c.note]
        return "; ".join(parts) if parts else f"all {len(self.collections)} collections match the snapshot"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "checked": self.checked,
            "ok": self.ok,
            "changed": self.changed,
            "snapshot_id": self.snapshot_id,
            "problem": self.problem,
            "collections": {c.name: c.as_dict() for c in self.collections},
            "added_back": {c.name: c.added for c in self.collections if c.action == "add_missing"},
            "restored": self.names("restore"),
            "left_alone": self.names("left_alone"),
            "summary": self.summary(),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def load_snapshot_records(directory: Path, entry: dict[str, Any]) -> SnapshotRecords:
    """Ids, documents and metadata of one snapshot collection."""
    rows: dict[str, int] = {}
    documents: list[Optional[str]] = []
    metadatas: list[Optional[dict[str, Any]]] = []
    with open(directory / entry["files"]["records"], encoding="utf-8") as handle:
        for row, line in enumerate(handle):
            rec = json.loads(line)
            rows[str(rec["id"])] = row
            documents.append(rec.get("document"))
            metadatas.append(rec.get("metadata") or None)
    return SnapshotRecords(entry, rows, documents, metadatas)


def iter_live(collection: Any, page_size: int = PAGE) -> Iterator[tuple[str, Optional[str], Optional[dict]]]:
    """(id, document, metadata) of every record of a live collection."""
    offset = 0
    while True:
        page = read_page(collection, offset, page_size, include=("documents", "metadatas"))
        ids = page.get("ids") or []
        if not ids:
            return
        docs = page.get("documents") or [None] * len(ids)
        metas = page.get("metadatas") or [None] * len(ids)
        yield from zip((str(i) for i in ids), docs, metas)
        offset += len(ids)
        if len(ids) < page_size:
            return


def compare(collection: Any, snap: SnapshotRecords, check: CollectionCheck) -> None:
    """Fill ``check`` with what the live collection holds compared with the snapshot."""
    seen: set[str] = set()
    for rid, doc, meta in iter_live(collection):
        seen.add(rid)
        row = snap.rows.get(rid)
        if row is None:
            check.not_in_snapshot += 1
        elif doc != snap.documents[row] or (meta or None) != snap.metadatas[row]:
            check.differing += 1
    check.live_count = len(seen)
    check.lost = len(snap.rows) - len(seen & snap.rows.keys())


def snapshot_batches(directory: Path, snap: SnapshotRecords, ids: Sequence[str],
                     batch_size: int) -> Iterator[tuple[list, list, list, np.ndarray]]:
    """(ids, documents, metadatas, embeddings) of the given snapshot ids, in snapshot order."""
    entry = snap.entry
    count, dim = int(entry["count"]), int(entry.get("dimension") or 0)
    vectors = np.memmap(directory / entry["files"]["embeddings"], dtype="<f4", mode="r", shape=(count, dim))
    ordered = sorted(ids, key=lambda rid: snap.rows[rid])
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start:start + batch_size]
        rows = [snap.rows[rid] for rid in chunk]
        yield (chunk, [snap.documents[r] for r in rows], [snap.metadatas[r] for r in rows],
               np.array(vectors[rows]))


def add_records(collection: Any, name: str, batches: Iterator[tuple[list, list, list, np.ndarray]]) -> int:
    """Add batches; errors name the collection, batch and ids. Returns records added."""
    added = 0
    for batch_no, (ids, docs, metas, vectors) in enumerate(batches, start=1):
        try:
            collection.add(**add_kwargs(ids, docs, metas, vectors))
        except Exception as exc:  # chromadb raises many types; add context and re-raise
            raise RestoreFailed(f"collection {name}: batch {batch_no} (ids {ids[0]}..{ids[-1]}) failed to load: "
                                f"{exc}") from exc
        added += len(ids)
    return added


def add_missing(client: Any, directory: Path, snap: SnapshotRecords, check: CollectionCheck, batch_size: int) -> None:
    """Put back the records the source lost (adding only their ids), then verify the count."""
    collection = client.get_collection(check.name)
    present = {rid for rid, _doc, _meta in iter_live(collection)}
    missing = [rid for rid in snap.rows if rid not in present]
    check.added = add_records(collection, check.name, snapshot_batches(directory, snap, missing, batch_size))
    final = int(collection.count())
    if final != len(snap.rows):
        raise RestoreFailed(f"collection {check.name}: {final} records after adding {check.added} missing ids back, "
                            f"the snapshot has {len(snap.rows)}")


def temp_name(snapshot_id: str, name: str) -> str:
    """The temporary collection a whole-collection restore loads into."""
    digest = hashlib.sha1(f"{snapshot_id}/{name}".encode("utf-8")).hexdigest()[:10]
    return f"restore-{digest}-{name}"[:512].rstrip("-_.") or f"restore-{digest}"


def kept_name(name: str) -> str:
    """Where a replaced collection keeps its records (a valid Chroma name, unique by time)."""
    return f"{name[:440]}-before-restore-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def find(client: Any, name: str) -> Optional[Any]:
    if name not in {c.name for c in client.list_collections()}:
        return None
    return client.get_collection(name)


def restore_by_swap(client: Any, directory: Path, snapshot_id: str, snap: SnapshotRecords,
                    check: CollectionCheck, batch_size: int) -> None:
    """Load into a temporary collection, verify it, then swap names (the old one is kept, renamed)."""
    entry = snap.entry
    name, temp = check.name, temp_name(snapshot_id, check.name)
    if find(client, temp) is not None:  # an earlier attempt of this restore died half way
        client.delete_collection(temp)
    settings = json.loads((directory / entry["files"]["collection"]).read_text(encoding="utf-8"))
    staged = client.create_collection(name=temp, configuration=creation_configuration(settings.get("configuration")),
                                      metadata=settings.get("metadata") or None, embedding_function=None)
    add_records(staged, name, snapshot_batches(directory, snap, list(snap.rows), batch_size))
    loaded = {rid for rid, _doc, _meta in iter_live(staged)}
    if loaded != set(snap.rows):
        raise RestoreFailed(f"collection {name}: the temporary collection {temp} holds {len(loaded)} records after "
                            f"loading, the snapshot has {len(snap.rows)}; the source's {name} was not touched")
    old = find(client, name)
    if old is not None:
        check.kept_as = kept_name(name)
        old.modify(name=check.kept_as)
    staged.modify(name=name)
    check.live_id = str(staged.id)
    check.added = len(loaded)


def decide(check: CollectionCheck, exists: bool, restore_source: bool) -> None:
    """The action and the operator's line for one collection."""
    if not exists:
        check.action, check.note = "restore", f"{check.name}: gone from the source, restored from the snapshot"
    elif check.changed_after_snapshot:
        what = f"{check.not_in_snapshot} ids not in it" + (
            f", {check.differing} records differ from it" if check.differing else "")
        if restore_source:
            check.action = "restore"
            check.note = (f"{check.name}: the source changed after the snapshot ({what}); restored from the snapshot "
                          "as asked (restore_source), the collection it replaced is kept")
        else:
            check.action = "left_alone"
            check.note = (f"{check.name}: the source changed after the snapshot ({what}); left alone "
                          "(-e restore_source=true restores it, keeping the current collection under another name)")
    elif check.lost:
        check.action = "add_missing"
        check.note = f"{check.name}: {check.lost} records lost since the snapshot, added back"


def repair_source(client: Any, directory: Path, names: Optional[Sequence[str]] = None, restore_source: bool = False,
                  batch_size: int = 1000, check_mode: bool = False) -> RepairResult:
    """Compare the source with the snapshot and put back what it lost, never replacing a newer write."""
    started = time.monotonic()
    directory = Path(directory)
    try:
        verified = verify_snapshot(directory)
        if verified.kind != "logical":
            raise SnapshotError(f"{directory} is a {verified.kind} snapshot; the rollback compares logical ones")
        manifest = load_manifest(directory)
    except (SnapshotError, OSError, ValueError, KeyError) as exc:
        return RepairResult(str(directory), checked=False, problem=f"snapshot {directory} is unusable: {exc}",
                            duration_seconds=time.monotonic() - started)
    result = RepairResult(str(directory), checked=True, snapshot_id=verified.snapshot_id)
    entries = [e for e in manifest.get("collections", []) if not names or e["name"] in names]
    batch_size = max(1, min(batch_size, int(client.get_max_batch_size())))
    for entry in entries:
        snap = load_snapshot_records(directory, entry)
        check = CollectionCheck(entry["name"], snapshot_count=len(snap.rows))
        live = find(client, check.name)
        if live is not None:
            check.live_id = str(live.id)
            compare(live, snap, check)
        decide(check, live is not None, restore_source)
        result.collections.append(check)
        if check_mode or check.action in ("none", "left_alone"):
            continue
        if check.action == "add_missing":
            add_missing(client, directory, snap, check, batch_size)
        else:
            restore_by_swap(client, directory, verified.snapshot_id, snap, check, batch_size)
        result.changed = True
    result.changed = result.changed or (check_mode and any(c.action in ("add_missing", "restore")
                                                           for c in result.collections))
    result.duration_seconds = time.monotonic() - started
    return result


__all__ = ["CollectionCheck", "RepairResult", "repair_source", "temp_name", "kept_name"]
