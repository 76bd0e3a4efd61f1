"""What the Transformer made of each record, kept so that an unchanged record is not transformed again.

The transform (routing, the schema profile's templates and regexes, the stateless record
checks) is a pure function of one record's content, its source collection, the source's
distance space and the routing and profile options. The pre-copy (and the pre-validation)
transform every record while the source is live; under the freeze the delta (and the
validation) read the frozen source again, where nearly every record is the same. A
:class:`MemoTransformer` looks each record up by ``(source collection, id)`` in a
:class:`TransformMemo` and reuses the stored output only when the record's digest
(io/fingerprint.record_digest: id, document, metadata with its exact JSON types, float32
embedding bytes) and the distance space are the same as when it was stored; anything else is
transformed again and stored.

The memo is a cache, never a source of truth: it lives in the run's checkpoint directory
(private), it is emptied when the options or the transform's code differ from those that
filled it (its *signature*), and a record whose output does not survive JSON exactly (a NaN,
an integer past 64 bits) is not stored. The cross-record checks (duplicates, unique values,
dimensions) still run on every record in each pass: the memo holds only the stateless part.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import sqlite3
from typing import Any, Optional, Sequence

import orjson

from ..io.exact_json import json_exact
from ..io.fingerprint import record_digest
from ..io.records import Record
from ..run import templating
from . import profile, record_checks, routing, transform
from .precopy import remove_store, staged_fingerprint
from .transform import Transformer

# 2: records hashed with io/fingerprint.record_digest (1 had a digest of its own);
# 3: each output keeps its staged fingerprint (precopy.record_fingerprint), so a reused record is not hashed again
MEMO_FORMAT = 3
FLUSH_EVERY = 2000
_CODE_MODULES = (transform, record_checks, profile, routing, templating)


def transform_memo_path(checkpoint_dir: str, run_id: str, user: str = "migrate") -> str:
    """The memo of one run's migration (``user`` migrate) or validation (``user`` validate)."""
    return os.path.join(checkpoint_dir, f"{run_id}.{user}.transform_memo.sqlite")


def remove_memo(path: str) -> None:
    """The memo's SQLite file with its -wal and -shm, as the fingerprint store's."""
    remove_store(path)


def _code_text() -> str:
    """The transform's own source code (a memo filled by other code is not reused); '' if unreadable."""
    parts = []
    for module in _CODE_MODULES:
        try:
            parts.append(inspect.getsource(module))
        except (OSError, TypeError):
            parts.append(f"<{module.__name__}: no source>")
    return "\n".join(parts)


def memo_signature(transformer: Transformer) -> Optional[str]:
    """What the memo's outputs depend on besides the record: the transformer's options and its code.
    None for a transformer built in code (its options are unknown: nothing is memoised)."""
    if transformer.options is None:
        return None
    payload = json.dumps({"format": MEMO_FORMAT, "options": transformer.options}, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode("utf-8") + b"\0" + _code_text().encode("utf-8")).hexdigest()


class TransformMemo:
    """``(source collection, id) -> (record digest, space, target, metadata, issues, staged fingerprint)`` in SQLite."""

    def __init__(self, path: str, signature: str) -> None:
        self.path = path
        if not os.path.exists(path):  # private like the checkpoint (SQLite's -wal/-shm follow its mode)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS about (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = self._db.execute("SELECT value FROM about WHERE key = 'signature'").fetchone()
        if row is None or row[0] != signature:  # other options, code or format: start empty (and its table anew)
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DROP TABLE IF EXISTS memo")
            self._create_table()
            self._db.execute("INSERT OR REPLACE INTO about (key, value) VALUES ('signature', ?)", (signature,))
            self._db.execute("COMMIT")
        self._pending: list[tuple[Any, ...]] = []

    def _create_table(self) -> None:
        self._db.execute("CREATE TABLE memo (source TEXT NOT NULL, id TEXT NOT NULL, digest BLOB NOT NULL, space TEXT, "
                         "target TEXT NOT NULL, metadata BLOB, issues BLOB NOT NULL, staged BLOB NOT NULL, "
                         "PRIMARY KEY (source, id)) WITHOUT ROWID")

    def rows(self, source: str, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """The stored rows of ``ids`` of ``source`` (one query per 500 ids), by id."""
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for rid, *row in self._db.execute(
                    f"SELECT id, digest, space, target, metadata, issues, staged FROM memo WHERE source = ? AND id IN ({marks})",
                    (source, *chunk)):
                found[rid] = tuple(row)
        return found

    def lookup(self, record: Record, space: Optional[str], digest: bytes,
               ahead: Optional[dict[str, tuple[Any, ...]]] = None) -> Optional[Record]:
        """The stored output for ``record`` when its digest and space are those stored, else None;
        ``ahead``: rows read beforehand (rows()) for the record's source."""
        if ahead is not None and record.id in ahead:
            row: Optional[tuple[Any, ...]] = ahead[record.id]
        else:
            row = self._db.execute("SELECT digest, space, target, metadata, issues, staged FROM memo "
                                   "WHERE source = ? AND id = ?",
                                   (record.source_collection, record.id)).fetchone()
        if row is None or bytes(row[0]) != digest or row[1] != space:
            return None
        return Record(id=record.id, embedding=record.embedding, document=record.document,
                      metadata=None if row[3] is None else orjson.loads(row[3]),
                      source_collection=record.source_collection, target_collection=row[2],
                      issues=list(orjson.loads(row[4])), staged_digest=bytes(row[5]))

    def remember(self, record: Record, space: Optional[str], digest: bytes, out: Record) -> bool:
        """Keep ``out`` for ``record`` (written in batches), with its staged fingerprint; False when it
        would not come back exactly."""
        try:
            metadata = None if out.metadata is None else orjson.dumps(out.metadata)
            issues = orjson.dumps(list(out.issues))
        except (TypeError, orjson.JSONEncodeError):  # a value orjson refuses (big int, lone surrogate, type)
            return False
        if metadata is not None and b"null" in metadata and not json_exact(out.metadata):
            return False  # NaN or infinity: orjson would give null back
        if not all(type(i) is str for i in out.issues):
            return False
        self._pending.append((record.source_collection, record.id, digest, space, out.target_collection,
                              metadata, issues, staged_fingerprint(out)))
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()
        return True

    def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO memo (source, id, digest, space, target, metadata, issues, staged) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def size(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM memo").fetchone()[0])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()


class MemoTransformer:
    """A Transformer that reuses the memo's output for a record whose source content is unchanged.

    Everything else (routing queries, the profile's dimensions and unique fields) is the
    wrapped Transformer's. ``hits`` and ``misses`` count the records of this pass.
    """

    def __init__(self, transformer: Transformer, memo: TransformMemo) -> None:
        self.transformer = transformer
        self.memo = memo
        self.hits = 0
        self.misses = 0
        self._lookups = memo.size() > 0  # a first pass (an empty memo) only stores
        self._ahead: tuple[str, dict[str, tuple[Any, ...]]] = ("", {})

    def prefetch(self, source: str, ids: Sequence[str]) -> None:
        """Read the memo's rows for the records about to be transformed (one query per 500, not one each)."""
        if self._lookups:
            self._ahead = (source, self.memo.rows(source, ids))

    def transform(self, record: Record, source_space: Optional[str] = None) -> Record:
        digest = record.source_digest if record.source_digest is not None else record_digest(record)
        ahead = self._ahead[1] if self._ahead[0] == record.source_collection else None
        out = self.memo.lookup(record, source_space, digest, ahead) if self._lookups else None
        if out is not None:
            self.hits += 1
            return out
        self.misses += 1
        out = self.transformer.transform(record, source_space)
        out.staged_digest = staged_fingerprint(out)  # computed once: the pre-copy's sink and the memo share it
        self.memo.remember(record, source_space, digest, out)
        return out

    def stats(self) -> dict[str, int]:
        return {"reused": self.hits, "transformed": self.misses}

    def close(self) -> None:
        self.memo.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transformer, name)


def memo_transformer(transformer: Transformer, path: str) -> Optional[MemoTransformer]:
    """A MemoTransformer over the memo at ``path``; None when ``transformer`` cannot be memoised."""
    signature = memo_signature(transformer)
    if signature is None:
        return None
    return MemoTransformer(transformer, TransformMemo(path, signature))
