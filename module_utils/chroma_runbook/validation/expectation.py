"""What the target must hold: the source pushed through the migration's own Transformer."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ..io.records import Record
from ..migrate.precopy import staged_fingerprint
from ..migrate.record_checks import RecordValidator
from ..migrate.transform import Transformer
from .sides import CollectionData

PREFETCH = 1000  # records whose memoised transform is read in one go


@dataclass
class Expected:
    """One record the target must hold."""

    source_collection: str
    source_row: int
    metadata: Optional[dict[str, Any]]
    document: Optional[str]


@dataclass
class Expectation:
    """Per target collection, the records it must hold; and the records the profile rejects."""

    targets: dict[str, dict[str, Expected]] = field(default_factory=dict)
    rejected: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (source coll, id) -> issue types
    placed: dict[tuple[str, str], str] = field(default_factory=dict)   # (source coll, id) -> target collection
    source_total: int = 0
    issue_counts: Counter = field(default_factory=Counter)
    source_targets_of: dict[str, set[str]] = field(default_factory=dict)  # source coll -> targets fed

    @property
    def expected_total(self) -> int:
        return sum(len(v) for v in self.targets.values())

    def target_of(self) -> dict[str, list[str]]:
        """id -> the target collections it is expected in (one per source collection holding it)."""
        out: dict[str, list[str]] = {}
        for target, records in self.targets.items():
            for rid in records:
                out.setdefault(rid, []).append(target)
        return out

    def pairs(self) -> set[tuple[str, str]]:
        """Every (target collection, id) the target must hold: what the pass rate counts."""
        return {(target, rid) for target, records in self.targets.items() for rid in records}


def build_expectation(transformer: Transformer, source: dict[str, CollectionData]) -> Expectation:
    """Transform every source record (in collection order, then insertion order)."""
    return build_expectation_streaming(transformer, ((name, coll) for name, coll in source.items()))


def build_expectation_streaming(transformer: Transformer, collections: Iterable[tuple[str, CollectionData]],
                                digests: Optional[dict[tuple[str, str], bytes]] = None) -> Expectation:
    """Same, consuming collections as they arrive (so reading and transforming overlap).

    ``digests``, when given, receives each expected record's content fingerprint under
    ``(target, id)``: the one the pre-copy keeps for what it staged (precopy.staged_fingerprint).
    """
    declared = {t: transformer.declared_dimension(t) for t in transformer.target_collections()}
    validator = RecordValidator(declared_dimensions=declared, unique_fields=transformer.unique_fields())
    exp = Expectation()
    for name, coll in collections:
        fed = exp.source_targets_of.setdefault(name, set())
        for row, rid in enumerate(coll.ids):
            if row % PREFETCH == 0:
                transformer.prefetch(name, coll.ids[row:row + PREFETCH])
            record = Record(
                id=rid,
                embedding=coll.vectors[row] if coll.vectors.size else None,
                document=coll.documents[row],
                metadata=coll.metadatas[row],
                source_collection=name,
                source_digest=coll.source_digests[row] if coll.source_digests is not None else None,
            )
            out = transformer.transform(record, source_space=coll.space)
            issues = validator.validate(out)
            exp.source_total += 1
            if issues:
                exp.rejected[(name, rid)] = list(issues)
                exp.issue_counts.update(i.split(":")[0] for i in issues)
                continue
            fed.add(out.target_collection)
            if digests is not None:
                digests[(out.target_collection, rid)] = staged_fingerprint(out)
            exp.placed[(name, rid)] = out.target_collection
            exp.targets.setdefault(out.target_collection, {})[rid] = Expected(name, row, out.metadata, out.document)
    return exp
