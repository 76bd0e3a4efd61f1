"""Phases 1-3 in one streaming pass: export, transform, validate.

Valid records go to the spool (unless dry run), invalid ones to the rejects file;
what is kept in memory is counts, the ids seen (duplicate detection) and a small
verification sample, never the records themselves.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Optional, Sequence, TextIO

from ..io.fsutil import open_private
from ..io.records import Record
from .exporter import SourceCollection, iter_source_records
from .record_checks import RecordValidator
from .spool import BatchPlanner, record_json_size
from .transform import Transformer

REJECTS_SAMPLE = 20


@dataclass
class ScanResult:
    """Everything phases 4 and 5 need to know from phases 1-3 (JSON-serialisable)."""

    total: int = 0
    valid: int = 0
    rejected: int = 0
    by_issue: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> expected, sources, dimension, batches
    sample: list[list[str]] = field(default_factory=list)  # [source, id, target]
    rejects_sample: list[dict[str, Any]] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def valid_ratio(self) -> float:
        return 1.0 if self.total == 0 else self.valid / self.total

    def top_issues(self, n: int = 5) -> list[tuple[str, int]]:
        return Counter(self.by_issue).most_common(n)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ScanResult":
        return cls(**raw)


class RejectsWriter:
    """JSON lines: id, source and target collection, issue types, the whole original record."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self._fh: Optional[TextIO] = open_private(path, "w") if path else None  # whole records: 0600

    def write(self, original: Record, transformed: Record) -> None:
        if self._fh is None:
            return
        line = {
            "id": original.id,
            "source_collection": original.source_collection,
            "target_collection": transformed.target_collection,
            "issues": transformed.issues,
            "record": original.original(),
        }
        # stdlib json keeps NaN/Infinity (orjson would turn them into null): nothing is lost.
        self._fh.write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            import os

            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


@dataclass
class ScanOptions:
    batch_size: int
    max_body_bytes: int
    page_size: int
    verify_sample: int
    live: bool = False  # the source is being written to (pre-copy): counts may move, nothing is exact


def scan_sources(client: Any, sources: Sequence[SourceCollection], transformer: Transformer,
                 options: ScanOptions, spool: Optional[Any], rejects: RejectsWriter,
                 progress: Any = None,
                 pages: Optional[Iterator[tuple[SourceCollection, list[Record]]]] = None) -> ScanResult:
    """Read every source record once; transform, validate, spool or reject it.

    ``spool`` is a SpoolWriter or anything with its ``add(record, cut)``; ``pages`` replaces the
    frozen reader (the pre-copy reads a live source its own way)."""
    result = ScanResult()
    validator = RecordValidator(
        declared_dimensions={t: transformer.declared_dimension(t) for t in transformer.target_collections()},
        unique_fields=transformer.unique_fields(),
    )
    planners: dict[str, BatchPlanner] = {}
    by_issue: Counter[str] = Counter()
    source_total = sum(s.count for s in sources)
    stride = max(1, source_total // options.verify_sample) if options.verify_sample else 0
    timings = {"export": 0.0, "transform": 0.0, "validate": 0.0}
    index = 0
    waited = time.perf_counter()
    if pages is None:
        pages = iter_source_records(client, sources, options.page_size)
    for source, page in pages:
        now = time.perf_counter()
        timings["export"] += now - waited
        counts = result.by_source.setdefault(source.name, {"read": 0, "valid": 0, "rejected": 0})
        transformer.prefetch(source.name, [record.id for record in page])
        for record in page:
            t0 = time.perf_counter()
            out = transformer.transform(record, source.space)
            t1 = time.perf_counter()
            validator.validate(out)
            timings["transform"] += t1 - t0
            result.total += 1
            counts["read"] += 1
            if out.issues:
                _reject(result, by_issue, counts, record, out, rejects)
            else:
                _accept(result, counts, out, source, planners, options, spool)
                if stride and index % stride == 0 and len(result.sample) < options.verify_sample:
                    result.sample.append([source.name, out.id, out.target_collection])
            index += 1
            timings["validate"] += time.perf_counter() - t1
        if progress is not None:
            progress(result)
        waited = time.perf_counter()
    changed = [f"{s.name} (count {s.count}, read {result.by_source.get(s.name, {}).get('read', 0)})"
               for s in sources if result.by_source.get(s.name, {}).get("read", 0) != s.count]
    if changed and not options.live:
        raise RuntimeError(f"source collection(s) changed while they were read: {', '.join(changed)}; "
                           f"writes to the source must be frozen during a migration")
    for target, planner in planners.items():
        result.targets[target]["batches"] = planner.total()
    result.by_issue = dict(by_issue.most_common())
    result.durations = {k: round(v, 3) for k, v in timings.items()}
    return result


def _reject(result: ScanResult, by_issue: Counter[str], counts: dict[str, int], record: Record,
            out: Record, rejects: RejectsWriter) -> None:
    result.rejected += 1
    counts["rejected"] += 1
    by_issue.update(out.issues)
    rejects.write(record, out)
    if len(result.rejects_sample) < REJECTS_SAMPLE:
        result.rejects_sample.append({"id": record.id, "source_collection": record.source_collection,
                                      "issues": out.issues})


def _accept(result: ScanResult, counts: dict[str, int], out: Record, source: SourceCollection,
            planners: dict[str, BatchPlanner], options: ScanOptions, spool: Optional[Any]) -> None:
    result.valid += 1
    counts["valid"] += 1
    target = out.target_collection
    info = result.targets.get(target)
    if info is None:
        info = result.targets[target] = {"expected": 0, "sources": [], "dimension": len(out.embedding), "batches": 0}
        planners[target] = BatchPlanner(options.batch_size, options.max_body_bytes)
    info["expected"] += 1
    if source.name not in info["sources"]:
        info["sources"].append(source.name)
    cut = planners[target].starts_new_batch(record_json_size(out.document, out.metadata, out.id, info["dimension"]))
    if spool is not None:
        spool.add(out, cut)
