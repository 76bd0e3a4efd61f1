"""The spool: valid, transformed records kept on local disk between validation and import.

Phase 3 must see every record before phase 4 writes anything (the min_valid_ratio
gate), and the source may be slow or far away, so the records that passed are
written once, per target collection, to ``<spool_dir>/<target>.f32`` (float32 rows)
and ``<target>.jsonl`` (id, document, metadata). The import reads them back in a
fixed order, so batches are the same on every run: that is what makes resume exact.
Memory stays flat: nothing is held beyond one batch.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator, Optional

import numpy as np
import orjson

from .checkpoint import write_atomic
from .records import Record

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

    @property
    def id_range(self) -> str:
        return f"{self.ids[0]!r}..{self.ids[-1]!r}" if self.ids else "(empty)"

    def __len__(self) -> int:
        return len(self.ids)


class SpoolWriter:
    """Appends valid records per target; ``finish`` writes the manifest that marks it complete."""

    def __init__(self, spool_dir: str) -> None:
        if os.path.exists(spool_dir):
            shutil.rmtree(spool_dir)
        os.makedirs(spool_dir)
        self.dir = spool_dir
        self.order: list[str] = []
        self.counts: dict[str, int] = {}
        self.dims: dict[str, int] = {}
        self._vec: dict[str, BinaryIO] = {}
        self._rec: dict[str, BinaryIO] = {}

    def add(self, record: Record) -> None:
        target = record.target_collection
        if target not in self._vec:
            self.order.append(target)
            self.counts[target] = 0
            self.dims[target] = int(len(record.embedding))  # type: ignore[arg-type]
            self._vec[target] = open(os.path.join(self.dir, f"{target}.f32"), "wb")
            self._rec[target] = open(os.path.join(self.dir, f"{target}.jsonl"), "wb")
        emb = np.ascontiguousarray(record.embedding, dtype=np.float32)
        if emb.shape[0] != self.dims[target]:
            raise ValueError(f"spool: record {record.id!r} for {target} has dimension {emb.shape[0]}, "
                             f"expected {self.dims[target]} (validation should have rejected it)")
        self._vec[target].write(emb.tobytes())
        self._rec[target].write(orjson.dumps({"id": record.id, "document": record.document,
                                              "metadata": record.metadata}) + b"\n")
        self.counts[target] += 1

    def finish(self, fingerprint: str) -> dict[str, Any]:
        for fh in list(self._vec.values()) + list(self._rec.values()):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        manifest = {
            "fingerprint": fingerprint,
            "complete": True,
            "order": self.order,
            "targets": {t: {"count": self.counts[t], "dimension": self.dims[t]} for t in self.order},
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
    if manifest.get("fingerprint") != fingerprint or not manifest.get("complete"):
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
    ``max_body_bytes`` of request body. Used to count batches during validation and to
    cut them during the import, so both agree."""

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


def iter_batches(spool_dir: str, manifest: dict[str, Any], batch_size: int, max_body_bytes: int,
                 skip_through: int = -1) -> Iterator[Batch]:
    """Every batch of the import, in order; batches with index <= skip_through are counted
    but their vectors are not loaded (they were acknowledged by an earlier attempt)."""
    index = 0
    for target in manifest["order"]:
        dim = manifest["targets"][target]["dimension"]
        planner = BatchPlanner(batch_size, max_body_bytes)
        with open(os.path.join(spool_dir, f"{target}.jsonl"), "rb") as lines, \
                open(os.path.join(spool_dir, f"{target}.f32"), "rb") as vectors:
            pending: list[dict[str, Any]] = []
            for raw in lines:
                item = orjson.loads(raw)
                if planner.starts_new_batch(record_json_size(item["document"], item["metadata"], item["id"], dim)):
                    yield _make_batch(index, target, pending, vectors, dim, index <= skip_through)
                    index += 1
                    pending = []
                pending.append(item)
            if pending:
                yield _make_batch(index, target, pending, vectors, dim, index <= skip_through)
                index += 1


def _make_batch(index: int, target: str, items: list[dict[str, Any]], vectors: BinaryIO, dim: int,
                skipped: bool) -> Batch:
    nbytes = len(items) * dim * 4
    if skipped:
        vectors.seek(nbytes, os.SEEK_CUR)
        embeddings = np.empty((0, dim), dtype=np.float32)
    else:
        embeddings = np.frombuffer(vectors.read(nbytes), dtype=np.float32).reshape(len(items), dim)
    return Batch(
        index=index,
        target=target,
        ids=[i["id"] for i in items],
        embeddings=embeddings,
        documents=[i["document"] for i in items],
        metadatas=[i["metadata"] for i in items],
    )


def remove(spool_dir: str) -> None:
    shutil.rmtree(spool_dir, ignore_errors=True)
