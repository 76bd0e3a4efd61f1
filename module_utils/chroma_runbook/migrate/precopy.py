"""Pre-copy while the source is live, then only the delta under the write freeze.

The bulk of a migration is copied into the run's staging collections while the apps keep
writing (``pre-copy``). For every record staged, a content fingerprint (id, document,
metadata, embedding bytes of the record as transformed for its target) is kept in the
run's fingerprint store, a SQLite file next to the checkpoint. Under the freeze, the
``delta`` pass reads the whole source again (reading is several times faster than an
add), transforms and validates it as a plain run would, and sends only the difference:

- an id staging does not hold is added;
- an id whose fingerprint differs is deleted from staging, then added again (an upsert
  would merge metadata keys and keep those the source dropped);
- an id staging holds that the frozen source no longer has (deleted, moved to another
  target by routing, rejected now) is deleted.

Every step is durable and can be repeated: before a batch is sent its ids are marked
*pending* (fingerprint unknown) in the store, and their fingerprints are written only
after the target acknowledged it. A pending id is treated as changed by the next pass
(delete + add), so a pass killed at any instant and run again ends with staging equal
to the frozen source, and a repeated pass sends nothing.
"""
from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import orjson

from ..io.paging import page_to_records
from ..io.prefetch import prefetch
from ..io.records import Record
from ..io.retry import call_with_retry
from ..io.source import read_page
from .batch_writer import AckTracker, write_all
from .exporter import SourceCollection
from .importer import write_batch
from .scan import RejectsWriter, ScanOptions, ScanResult, scan_sources
from .spool import Batch, BatchPlanner, record_json_size
from .staging import StagingArea
from .transform import Transformer

DIGEST_BYTES = 16
_MISSING = object()


def record_fingerprint(rid: str, document: Optional[str], metadata: Optional[dict[str, Any]],
                       embedding: Optional[np.ndarray]) -> bytes:
    """A digest of everything the target stores for one record (metadata keys sorted)."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    h.update(rid.encode("utf-8") + b"\x00")
    h.update(b"\x00" if document is None else b"\x01" + document.encode("utf-8"))
    h.update(b"\x00" + orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS) + b"\x00")
    if embedding is not None:
        h.update(np.ascontiguousarray(embedding, dtype=np.float32).tobytes())
    return h.digest()


def staged_fingerprint(record: Record) -> bytes:
    """:func:`record_fingerprint` of a transformed record: the one the transform memo kept for it, or computed."""
    if record.staged_digest is not None:
        return record.staged_digest
    return record_fingerprint(record.id, record.document, record.metadata, record.embedding)


def fingerprint_path(checkpoint_dir: str, run_id: str) -> str:
    return os.path.join(checkpoint_dir, f"{run_id}.fingerprints.sqlite")


def delta_ids_path(checkpoint_dir: str, run_id: str) -> str:
    """Where the delta's sent ids are kept for the validation under the freeze (outlives the store)."""
    return os.path.join(checkpoint_dir, f"{run_id}.delta_ids.json")


def write_delta_ids(path: str, touched: dict[str, list[str]]) -> None:
    """``{target: [ids the delta sent]}``, replaced atomically."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps({t: sorted(ids) for t, ids in sorted(touched.items())}))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_delta_ids(path: str) -> Optional[dict[str, set[str]]]:
    """The delta's sent ids per target; None when no delta wrote the file."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        data = orjson.loads(handle.read())
    return {str(t): set(ids) for t, ids in data.items()}


class FingerprintStore:
    """What each staging collection holds: ``(target, id) -> digest``; NULL = pending (unknown).

    One SQLite file, every change committed before the caller goes on (WAL, synchronous=FULL),
    shared by the writer threads under a lock.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        if not os.path.exists(path):  # private like the checkpoint and the spool (SQLite's -wal/-shm follow)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS fp (target TEXT NOT NULL, id TEXT NOT NULL, digest BLOB, "
                         "PRIMARY KEY (target, id)) WITHOUT ROWID")
        # ids the delta under the freeze sent (the validation under the freeze re-checks them)
        self._db.execute("CREATE TABLE IF NOT EXISTS touched (target TEXT NOT NULL, id TEXT NOT NULL, "
                         "PRIMARY KEY (target, id)) WITHOUT ROWID")

    def load(self) -> dict[str, dict[str, Optional[bytes]]]:
        """Every target's ``{id: digest or None}``."""
        out: dict[str, dict[str, Optional[bytes]]] = {}
        with self._lock:
            for target, rid, digest in self._db.execute("SELECT target, id, digest FROM fp"):
                out.setdefault(target, {})[rid] = digest
        return out

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {t: int(n) for t, n in self._db.execute("SELECT target, COUNT(*) FROM fp GROUP BY target")}

    def mark_pending(self, target: str, ids: Sequence[str], touched: bool = False) -> None:
        """Fingerprints unknown until acknowledged; ``touched``: the delta sends them (kept for validation)."""
        rows = [(target, i) for i in ids]
        statements = [("INSERT OR REPLACE INTO fp (target, id, digest) VALUES (?, ?, NULL)", rows)]
        if touched:
            statements.append(("INSERT OR IGNORE INTO touched (target, id) VALUES (?, ?)", rows))
        self._write_many(statements)

    def touched(self) -> dict[str, list[str]]:
        """Every id a delta pass of this run sent, per target."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for target, rid in self._db.execute("SELECT target, id FROM touched"):
                out.setdefault(target, []).append(rid)
        return out

    def set(self, target: str, ids: Sequence[str], digests: Sequence[bytes]) -> None:
        self._write("INSERT OR REPLACE INTO fp (target, id, digest) VALUES (?, ?, ?)",
                    [(target, i, d) for i, d in zip(ids, digests)])

    def forget(self, target: str, ids: Sequence[str]) -> None:
        self._write("DELETE FROM fp WHERE target = ? AND id = ?", [(target, i) for i in ids])

    def forget_target(self, target: str) -> None:
        self._write("DELETE FROM fp WHERE target = ?", [(target,)])

    def clear(self) -> None:
        self._write("DELETE FROM fp", [()])

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._write_many([(sql, rows)])

    def _write_many(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        """All statements in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements:
                    self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def remove_store(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


@dataclass
class DeltaBatch(Batch):
    """One add() to a staging collection; ``replace`` ids are deleted first (changed or pending)."""

    replace: list[str] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)


@dataclass
class SyncStats:
    """What one pass sent: records added (new ids), replaced (changed or pending), deleted, unchanged."""

    added: int = 0
    replaced: int = 0
    deleted: int = 0
    unchanged: int = 0
    batches: int = 0
    retries: int = 0
    changed_sample: list[list[str]] = field(default_factory=list)  # [source, id, target] of sent records
    transform: dict[str, int] = field(default_factory=dict)  # records whose transform was reused / computed

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "replaced": self.replaced, "deleted": self.deleted,
                "unchanged": self.unchanged, "batches": self.batches, "retries": self.retries,
                "transform": dict(self.transform)}


class DeltaSink:
    """Takes the scan's valid records (the ``spool`` of scan_sources) and keeps those staging lacks.

    ``known`` is the store's content at the start of the pass; records whose fingerprint
    matches are skipped, the others are cut into DeltaBatches handed to ``emit``.
    """

    def __init__(self, known: dict[str, dict[str, Optional[bytes]]], batch_size: int, max_body_bytes: int,
                 emit: Callable[[DeltaBatch], None], stats: SyncStats, keep_changed: int) -> None:
        self.known, self.emit, self.stats = known, emit, stats
        self.batch_size, self.max_body_bytes = batch_size, max_body_bytes
        self.keep_changed = keep_changed
        self.seen: dict[str, set[str]] = {}
        self._planners: dict[str, BatchPlanner] = {}
        self._open: dict[str, list[tuple[Record, bytes, bool]]] = {}
        self._index = 0

    def add(self, record: Record, cut: bool = False) -> None:  # noqa: ARG002 - cuts are the sink's own
        target = record.target_collection
        self.seen.setdefault(target, set()).add(record.id)
        digest = staged_fingerprint(record)
        known = self.known.get(target, {}).get(record.id, _MISSING)
        if known == digest:
            self.stats.unchanged += 1
            return
        if len(self.stats.changed_sample) < self.keep_changed:
            self.stats.changed_sample.append([record.source_collection, record.id, target])
        planner = self._planners.get(target)
        if planner is None:
            planner = self._planners[target] = BatchPlanner(self.batch_size, self.max_body_bytes)
        dim = 0 if record.embedding is None else len(record.embedding)
        if planner.starts_new_batch(record_json_size(record.document, record.metadata, record.id, dim)):
            self._close(target)
        self._open.setdefault(target, []).append((record, digest, known is not _MISSING))

    def finish(self) -> None:
        for target in list(self._open):
            self._close(target)

    def _close(self, target: str) -> None:
        pending = self._open.pop(target, None)
        if not pending:
            return
        records = [r for r, _, _ in pending]
        batch = DeltaBatch(index=self._index, target=target, ids=[r.id for r in records],
                           embeddings=np.stack([np.asarray(r.embedding, dtype=np.float32) for r in records]),
                           documents=[r.document for r in records], metadatas=[r.metadata for r in records],
                           source=records[0].source_collection,
                           replace=[r.id for r, _, known in pending if known],
                           digests=[d for _, d, _ in pending])
        self._index += 1
        self.emit(batch)


class _Feed:
    """A bounded hand-over of batches from the scan to the writers."""

    def __init__(self, depth: int) -> None:
        self._items: "queue.Queue[Optional[DeltaBatch]]" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()

    def put(self, batch: Optional[DeltaBatch]) -> None:
        while not self._stop.is_set():
            try:
                self._items.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue
        if batch is not None:
            raise RuntimeError("the staging writer stopped; batch not sent")

    def close(self) -> None:
        """No more batches: the writers finish those queued."""
        self.put(None)

    def abort(self) -> None:
        """Stop now: batches still queued are not sent."""
        self._stop.set()
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        self._items.put(None)

    def __iter__(self) -> Iterator[DeltaBatch]:
        while not self._stop.is_set():
            item = self._items.get()
            if item is None:
                return
            yield item


def iter_live_records(client: Any, sources: Sequence[SourceCollection], page_size: int,
                      depth: int = 3) -> Iterator[tuple[SourceCollection, list[Record]]]:
    """Pages of every source collection while it is written to: read until a short page;
    a collection deleted meanwhile ends early (the delta under the freeze reads it again)."""
    def pages() -> Iterator[tuple[SourceCollection, list[Record]]]:
        for source in sources:
            try:
                collection = client.get_collection(source.name)
            except Exception:  # noqa: BLE001 - deleted since it was listed
                continue
            offset = 0
            while True:
                try:
                    page = read_page(collection, offset, page_size)
                except Exception:  # noqa: BLE001 - deleted while read
                    break
                records = page_to_records(page, source.name)
                if records:
                    yield source, records
                offset += len(records)
                if len(records) < page_size:
                    break

    return prefetch(pages(), depth=depth, name="chroma-precopy-read")


@dataclass
class SyncOptions:
    batch_size: int
    max_body_bytes: int
    page_size: int
    verify_sample: int
    writers: int
    max_retries: int
    retry_delay: float
    changed_sample: int = 5000


class StagingSync:
    """One pass source -> staging: live (pre-copy) or frozen (delta, exact)."""

    def __init__(self, client: Any, sources: Sequence[SourceCollection], transformer: Transformer,
                 staging: StagingArea, store: FingerprintStore, options: SyncOptions,
                 progress: Optional[Callable[[ScanResult], None]] = None,
                 log: Optional[Callable[..., None]] = None) -> None:
        self.client, self.sources, self.transformer = client, sources, transformer
        self.staging, self.store, self.opts = staging, store, options
        self.progress, self.log = progress, log or (lambda *a, **k: None)
        # called after each batch the target acknowledged (under the writers' lock), with the totals so far:
        # the scan's own progress stops when the source is read, and the writers finish later
        self.on_sent: Optional[Callable[[SyncStats], None]] = None
        self.stats = SyncStats()

    def run(self, live: bool, rejects_path: Optional[str]) -> ScanResult:
        """Scan the source, send what staging lacks while scanning; frozen: delete what is gone."""
        known = self.store.load()
        feed = _Feed(depth=self.opts.writers + 2)
        errors: list[BaseException] = []
        worker = threading.Thread(target=self._write_loop, args=(feed, errors, live), name="chroma-sync-write", daemon=True)
        worker.start()
        sink = DeltaSink(known, self.opts.batch_size, self.opts.max_body_bytes, feed.put, self.stats,
                         0 if live else self.opts.changed_sample)
        rejects = RejectsWriter(None if live else rejects_path)
        scan_opts = ScanOptions(self.opts.batch_size, self.opts.max_body_bytes, self.opts.page_size,
                                self.opts.verify_sample, live=live)
        pages = iter_live_records(self.client, self.sources, self.opts.page_size) if live else None

        def progress(result: ScanResult) -> None:
            if errors:
                raise errors[0]
            if self.progress is not None:
                self.progress(result)

        try:
            scan = scan_sources(self.client, self.sources, self.transformer, scan_opts, sink, rejects,
                                progress, pages=pages)
            sink.finish()
            feed.close()
        except BaseException:
            feed.abort()
            worker.join()
            raise
        finally:
            rejects.close()
        worker.join()
        if errors:
            raise errors[0]
        if not live:
            self._delete_gone(known, sink.seen)
        return scan

    # --- writing -------------------------------------------------------------------
    def _write_loop(self, feed: _Feed, errors: list[BaseException], live: bool) -> None:
        def on_retry(attempt: int, exc: BaseException, delay: float, batch: DeltaBatch) -> None:
            self.stats.retries += 1
            self.log("retry", level="warning", collection=batch.target, batch_index=batch.index, attempt=attempt,
                     delay_s=delay, error=f"{type(exc).__name__}: {exc}")

        def send(batch: Batch) -> None:
            assert isinstance(batch, DeltaBatch)
            col = self.staging.collection_for(batch.target, batch.source)
            self.store.mark_pending(batch.target, batch.ids, touched=not live)
            if batch.replace:
                call_with_retry(lambda: col.delete(ids=batch.replace), self.opts.max_retries, self.opts.retry_delay,
                                lambda a, e, d: on_retry(a, e, d, batch))
            write_batch(col, batch, self.opts.max_retries, self.opts.retry_delay,
                        lambda a, e, d: on_retry(a, e, d, batch))

        def acknowledged(batch: Batch) -> None:
            assert isinstance(batch, DeltaBatch)
            self.store.set(batch.target, batch.ids, batch.digests)
            self.stats.batches += 1
            self.stats.replaced += len(batch.replace)
            self.stats.added += len(batch) - len(batch.replace)
            self.log("sync_batch", collection=batch.target, batch_index=batch.index, records=len(batch),
                     replaced=len(batch.replace), first_id=batch.ids[0], last_id=batch.ids[-1])
            if self.on_sent is not None:
                self.on_sent(self.stats)

        try:
            write_all(iter(feed), AckTracker(), self.opts.writers, send, acknowledged, lambda _b: None)
        except BaseException as exc:  # noqa: BLE001 - raised in the scanning thread
            errors.append(exc)
            feed.abort()

    def _delete_gone(self, known: dict[str, dict[str, Optional[bytes]]], seen: dict[str, set[str]]) -> None:
        """Ids staging holds that the frozen source does not give (any more) to that target."""
        for target, ids in known.items():
            gone = [i for i in ids if i not in seen.get(target, ())]
            if not gone:
                continue
            col = self.staging.collection_for(target, "")
            for start in range(0, len(gone), self.opts.batch_size):
                chunk = gone[start:start + self.opts.batch_size]
                call_with_retry(lambda: col.delete(ids=chunk), self.opts.max_retries, self.opts.retry_delay)
                self.store.forget(target, chunk)
                self.stats.deleted += len(chunk)
            self.log("sync_deleted", collection=target, records=len(gone))


def drop_unplanned(staging: StagingArea, store: FingerprintStore, planned: Iterable[str]) -> list[str]:
    """Staging collections of targets the frozen source no longer feeds: dropped with their fingerprints."""
    keep = set(planned)
    staged = {t for t, s in staging.targets.items() if s.get("staging_id")}
    dropped = []
    for target in sorted((set(store.counts()) | staged) - keep):
        name = staging.drop_one(target)
        store.forget_target(target)
        if name:
            dropped.append(name)
    return dropped
