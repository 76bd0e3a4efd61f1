"""Shared inputs of the eight checks and the shape of one check's result."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np

from ..migrate.transform import Transformer
from .expectation import Expectation
from .sides import CollectionData
from .thresholds import ROLLBACK_REASONS


@dataclass
class CheckResult:
    """One check: status, its figures, the offending ids (truncated lists with full counts)."""

    name: str
    title: str
    status: str
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    offending: dict[str, list[str]] = field(default_factory=dict)
    offending_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # (target collection, id) of the records this check fails: ids are unique per collection only,
    # so the pass rate counts pairs (a lost record counts under the collection it was expected in)
    failed_ids: set[tuple[str, str]] = field(default_factory=set)
    # when it ran: [{"when": "before the freeze"|"under the freeze", "part": ..., "records": n, "totals": bool}]
    ran: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rollback_reason(self) -> str:
        return ROLLBACK_REASONS.get(self.name, self.title)

    def add_offending(self, kind: str, ids: Iterable[str], limit: int) -> None:
        ids = list(ids)
        self.offending_counts[kind] = len(ids)
        self.offending[kind] = sorted(ids)[:limit]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "summary": self.summary,
            "figures": self.figures,
            "offending_ids": self.offending,
            "offending_counts": self.offending_counts,
            "notes": self.notes,
            "ran": self.ran,
            "ran_text": ran_text(self.ran),
        }


def ran_text(ran: list[dict[str, Any]]) -> str:
    """"before the freeze (pre-copy, 9000 records); under the freeze (delta, 90 records + totals)"."""
    parts = []
    for part in ran:
        what = f"{part['part']}, {part['records']} records" if part.get("records") is not None else part["part"]
        if part.get("totals"):
            what += " + totals" if part.get("records") is not None else ""
        parts.append(f"{part['when']} ({what})")
    return "; ".join(parts)


@dataclass
class Context:
    """Everything read and predicted once, shared by every check."""

    source: dict[str, CollectionData]
    target: dict[str, CollectionData]
    expectation: Expectation
    transformer: Transformer
    thresholds: dict[str, float]
    rejects: Optional[dict[str, list[str]]] = None     # None: no rejects file given
    k: int = 10
    sample_size: int = 50
    seed: int = 42
    max_ids: int = 20
    test_queries: list[dict[str, Any]] = field(default_factory=list)
    _located: Optional[dict[str, list[str]]] = None

    def located(self) -> dict[str, list[str]]:
        """id -> target collections (among those read) that hold it."""
        if self._located is None:
            found: dict[str, list[str]] = {}
            for name, coll in self.target.items():
                for rid in coll.ids:
                    found.setdefault(rid, []).append(name)
            self._located = found
        return self._located

    def present_pairs(self, target: str) -> tuple[list[str], np.ndarray, list[tuple[str, int]]]:
        """Expected records of ``target`` found there: ids, target rows, (source collection, row)."""
        coll = self.target.get(target)
        ids: list[str] = []
        rows: list[int] = []
        sources: list[tuple[str, int]] = []
        if coll is None:
            return ids, np.zeros(0, dtype=np.int64), sources
        for rid, exp in self.expectation.targets.get(target, {}).items():
            row = coll.row.get(rid)
            if row is not None:
                ids.append(rid)
                rows.append(row)
                sources.append((exp.source_collection, exp.source_row))
        return ids, np.asarray(rows, dtype=np.int64), sources

    def target_names(self) -> list[str]:
        """Target collections the checks look at: expected ones first, then others read."""
        names = sorted(self.expectation.targets)
        return names + sorted(n for n in self.target if n not in names)
