"""The spool: valid, transformed records kept on local disk between validation and import.

Phase 3 must see every record before the target's collections change (the min_valid_ratio
gate), and the source may be slow or far away, so the records that passed are written
once, per target collection, to ``<spool_dir>/<target>.f32`` (float32 rows) and
``<target>.jsonl`` (id, document, metadata). Batches are cut while the records are written
and numbered in the order they close; each closed batch is flushed and published (the
import may send it while validation goes on) and listed in the manifest, so a resumed run
sends the very same batches: that is what makes resume exact. Memory stays flat: nothing
is held beyond one batch.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Optional

import numpy as np
import orjson

from ..io.fsutil import DIR_MODE, open_private
from ..io.records import Record
from .checkpoint import write_atomic

MANIFEST = "manifest.json"
FLOAT_JSON_BYTES = 16  # upper bound for one float32 in JSON, comma included
RECORD_JSON_OVERHEAD = 64


@dataclass
class Batch:
    """One add() call: records of a single target collection."""

    index: int
    target: str
    ids: list[str]
    embeddings: np.ndarray
    documents: list[Optional[str]]
    metadatas: list[Optional[dict[str, Any]]]
    source: str = ""  # source collection of its first record

    @property
    def id_range(self) -> str:
        return f"{self.ids[0]!r}..{self.ids[-1]!r}" if self.ids else "(empty)"

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class BatchRef:
    """Where one closed batch lies in the spool: rows of ``<target>.f32``, bytes of ``<target>.jsonl``."""

    index: int
    target: str
    row: int
    count: int
    offset: int
    length: int
    source: str
    dim: int

    def to_list(self) -> list[Any]:
        return [self.index, self.target, self.row, self.count, self.offset, self.length, self.source, self.dim]

    @classmethod
    def from_list(cls, raw: list[Any]) -> "BatchRef":
        index, target, row, count, offset, length, source, dim = raw
        return cls(int(index), str(target), int(row), int(count), int(offset), int(length), str(source), int(dim))


class _OpenBatch:
    """The batch a target is filling: where it starts and what it holds so far."""

    def __init__(self, row: int, offset: int, source: str) -> None:
        self.row, self.offset, self.source = row, offset, source
        self.count = 0
        self.length = 0


class SpoolWriter:
    """Appends valid records per target and cuts them into batches.

    ``add(record, cut)``: ``cut`` (from the scan's BatchPlanner) closes the target's open batch
    before the record. A closed batch is flushed to disk, then handed to ``on_batch``.
    ``finish`` closes the last batches and writes the manifest that marks the spool complete.
    """

    def __init__(self, spool_dir: str, on_batch: Optional[Callable[[BatchRef], None]] = None) -> None:
        if os.path.exists(spool_dir):
            shutil.rmtree(spool_dir)
        os.makedirs(spool_dir, mode=DIR_MODE)
        os.chmod(spool_dir, DIR_MODE)
        self.dir = spool_dir
        self.on_batch = on_batch
        self.order: list[str] = []
        self.counts: dict[str, int] = {}
        self.dims: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.batches: list[BatchRef] = []
        self._open: dict[str, _OpenBatch] = {}
        self._vec: dict[str, BinaryIO] = {}
        self._rec: dict[str, BinaryIO] = {}

    def add(self, record: Record, cut: bool = False) -> None:
        target = record.target_collection
        if target not in self._vec:
            self._start_target(target, int(len(record.embedding)))  # type: ignore[arg-type]
        emb = np.ascontiguousarray(record.embedding, dtype=np.float32)
        if emb.shape[0] != self.dims[target]:
            raise ValueError(f"spool: record {record.id!r} for {target} has dimension {emb.shape[0]}, "
                             f"expected {self.dims[target]} (validation should have rejected it)")
        if cut:
            self._close(target)
        line = orjson.dumps({"id": record.id, "document": record.document, "metadata": record.metadata}) + b"\n"
        batch = self._open.get(target)
        if batch is None:
            batch = self._open[target] = _OpenBatch(self.counts[target], self.bytes[target], record.source_collection)
        self._vec[target].write(emb.tobytes())
        self._rec[target].write(line)
        batch.count += 1
        batch.length += len(line)
        self.counts[target] += 1
        self.bytes[target] += len(line)

    def _start_target(self, target: str, dim: int) -> None:
        self.order.append(target)
        self.counts[target], self.bytes[target], self.dims[target] = 0, 0, dim
        self._vec[target] = open_private(os.path.join(self.dir, f"{target}.f32"), "wb")  # user data: 0600
        self._rec[target] = open_private(os.path.join(self.dir, f"{target}.jsonl"), "wb")

    def _close(self, target: str) -> None:
        batch = self._open.pop(target, None)
        if batch is None or batch.count == 0:
            return
        self._vec[target].flush()
        self._rec[target].flush()
        ref = BatchRef(len(self.batches), target, batch.row, batch.count, batch.offset, batch.length, batch.source,
                       self.dims[target])
        self.batches.append(ref)
        if self.on_batch is not None:
            self.on_batch(ref)

    def finish(self, fingerprint: str) -> dict[str, Any]:
        for target in self.order:
            self._close(target)
        for fh in list(self._vec.values()) + list(self._rec.values()):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        manifest = {
            "fingerprint": fingerprint,
            "complete": True,
            "order": self.order,
            "targets": {t: {"count": self.counts[t], "dimension": self.dims[t]} for t in self.order},
            "batches": [b.to_list() for b in self.batches],
        }
        write_atomic(os.path.join(self.dir, MANIFEST), manifest)
        return manifest

    def abort(self) -> None:
        for fh in list(self._vec.values()) + list(self._rec.values()):
            fh.close()


def load_manifest(spool_dir: str, fingerprint: str) -> Optional[dict[str, Any]]:
    """A complete spool made with the same options, or None."""
    path = os.path.join(spool_dir, MANIFEST)
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return None
    if manifest.get("fingerprint") != fingerprint or not manifest.get("complete") or "batches" not in manifest:
        return None
    for target, info in manifest["targets"].items():
        vec = os.path.join(spool_dir, f"{target}.f32")
        if not os.path.exists(vec) or os.path.getsize(vec) != info["count"] * info["dimension"] * 4:
            return None
    return manifest


def record_json_size(document: Optional[str], metadata: Optional[dict[str, Any]], rid: str, dim: int) -> int:
    """A safe upper bound of one record's share of the add() request body."""
    return (dim * FLOAT_JSON_BYTES + len(orjson.dumps(document)) + len(orjson.dumps(metadata))
            + len(orjson.dumps(rid)) + RECORD_JSON_OVERHEAD)


class BatchPlanner:
    """Cuts one target's record stream into batches: at most ``batch_size`` records and
    ``max_body_bytes`` of request body. The scan asks it for every valid record; its cuts
    close the spool's batches (and count them in a dry run, where nothing is spooled)."""

    def __init__(self, batch_size: int, max_body_bytes: int) -> None:
        self.batch_size, self.max_body_bytes = batch_size, max_body_bytes
        self.pending = 0
        self.size = 0
        self.batches = 0

    def starts_new_batch(self, record_size: int) -> bool:
        """Account for one more record; True when the records before it form a full batch."""
        cut = self.pending > 0 and (self.pending >= self.batch_size or self.size + record_size > self.max_body_bytes)
        if cut:
            self.batches += 1
            self.pending, self.size = 0, 0
        self.pending += 1
        self.size += record_size
        return cut

    def total(self) -> int:
        """Batches including the last, partial one."""
        return self.batches + (1 if self.pending else 0)


class BatchReader:
    """Reads published batches back from the spool (the files may still be growing)."""

    def __init__(self, spool_dir: str) -> None:
        self.dir = spool_dir
        self._files: dict[str, tuple[BinaryIO, BinaryIO]] = {}

    def read(self, ref: BatchRef, vectors: bool = True) -> Batch:
        """The batch ``ref``; with ``vectors=False`` (acknowledged earlier) only its ids and size."""
        dim = ref.dim
        vec, lines = self._open(ref.target)
        lines.seek(ref.offset)
        raw = lines.read(ref.length)
        items = [orjson.loads(line) for line in raw.splitlines()]
        if len(items) != ref.count:
            raise ValueError(f"spool {self.dir}: batch {ref.index} of {ref.target} should hold {ref.count} "
                             f"records, found {len(items)}; start again with resume=false")
        if vectors:
            vec.seek(ref.row * dim * 4)
            embeddings = np.frombuffer(vec.read(ref.count * dim * 4), dtype=np.float32).reshape(ref.count, dim)
        else:
            embeddings = np.empty((0, dim), dtype=np.float32)
        return Batch(index=ref.index, target=ref.target, ids=[i["id"] for i in items], embeddings=embeddings,
                     documents=[i["document"] for i in items], metadatas=[i["metadata"] for i in items],
                     source=ref.source)

    def _open(self, target: str) -> tuple[BinaryIO, BinaryIO]:
        if target not in self._files:
            self._files[target] = (open(os.path.join(self.dir, f"{target}.f32"), "rb"),
                                   open(os.path.join(self.dir, f"{target}.jsonl"), "rb"))
        return self._files[target]

    def close(self) -> None:
        for vec, lines in self._files.values():
            vec.close()
            lines.close()
        self._files.clear()


def iter_batches(spool_dir: str, manifest: dict[str, Any], skip_through: int = -1) -> Iterator[Batch]:
    """Every batch of a complete spool, in order; batches with index <= skip_through are
    yielded without their vectors (they were acknowledged by an earlier attempt)."""
    reader = BatchReader(spool_dir)
    try:
        for raw in manifest["batches"]:
            ref = BatchRef.from_list(raw)
            yield reader.read(ref, vectors=ref.index > skip_through)
    finally:
        reader.close()


class BatchFeed:
    """Batches the scan publishes while it runs, read back from the spool in publication order.

    The scan calls ``put`` for each closed batch and ``close`` at its end; ``abort`` ends the
    iteration early (the batches not yet read are not sent).
    """

    def __init__(self, spool_dir: str) -> None:
        self._refs: "queue.Queue[Optional[BatchRef]]" = queue.Queue()
        self._aborted = threading.Event()
        self._reader = BatchReader(spool_dir)

    def put(self, ref: BatchRef) -> None:
        self._refs.put(ref)

    def close(self) -> None:
        self._refs.put(None)

    def abort(self) -> None:
        self._aborted.set()
        self._refs.put(None)

    def __iter__(self) -> Iterator[Batch]:
        try:
            while not self._aborted.is_set():
                ref = self._refs.get()
                if ref is None or self._aborted.is_set():
                    return
                yield self._reader.read(ref)
        finally:
            self._reader.close()


def remove(spool_dir: str) -> None:
    shutil.rmtree(spool_dir, ignore_errors=True)
