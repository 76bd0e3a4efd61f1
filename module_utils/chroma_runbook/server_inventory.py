"""What a Chroma server holds: collections, their counts and configuration.

Used by the preflight (source counts against expected counts, target empty or
holding only this run's collections) and by the rollback (source against the
snapshot manifest). Read-only: nothing here writes to a server.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Optional

from .connection import ConnectionSpec, connect


@dataclass(frozen=True)
class CollectionInfo:
    """One collection as the server describes it."""

    name: str
    id: str
    count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    configuration: Optional[dict[str, Any]] = None
    dimension: Optional[int] = None


@dataclass(frozen=True)
class ServerInventory:
    """Every collection of one tenant/database, sorted by name."""

    server: str
    collections: list[CollectionInfo]
    heartbeat_ns: Optional[int] = None

    @property
    def total(self) -> int:
        return sum(c.count for c in self.collections if c.count > 0)

    def vector_bytes(self) -> int:
        """Bytes of float32 vectors the collections hold (0 when a dimension is unknown)."""
        return sum(max(c.count, 0) * (c.dimension or 0) * 4 for c in self.collections)

    def counts(self) -> dict[str, int]:
        return {c.name: c.count for c in self.collections}

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "heartbeat_ns": self.heartbeat_ns,
            "total": self.total,
            "vector_bytes": self.vector_bytes(),
            "collection_names": [c.name for c in self.collections],
            "counts": self.counts(),
            "collections": {c.name: asdict(c) for c in self.collections},
        }


def _dimension(collection: Any) -> Optional[int]:
    """Length of the first record's embedding (None for an empty collection)."""
    peek = collection.get(limit=1, include=["embeddings"])
    embeddings = peek.get("embeddings")
    if embeddings is None or len(embeddings) == 0 or embeddings[0] is None:
        return None
    return int(len(embeddings[0]))


def _configuration(collection: Any) -> Optional[dict[str, Any]]:
    """``configuration_json`` made plain JSON (it may hold non-dict values)."""
    raw = getattr(collection, "configuration_json", None)
    return dict(raw) if isinstance(raw, Mapping) else None


def read_inventory(
    spec: ConnectionSpec | Mapping[str, Any],
    names: Optional[Iterable[str]] = None,
    with_configuration: bool = True,
) -> ServerInventory:
    """List the server's collections (or only ``names``) with counts.

    A collection listed in ``names`` that does not exist is reported with
    count -1 and id "" so callers can say which one is missing.
    """
    if not isinstance(spec, ConnectionSpec):
        spec = ConnectionSpec.from_dict(spec)
    client = connect(spec)
    heartbeat = int(client.heartbeat())
    wanted = None if names is None else set(names)
    found: dict[str, CollectionInfo] = {}
    for collection in client.list_collections():
        if wanted is not None and collection.name not in wanted:
            continue
        found[collection.name] = CollectionInfo(
            name=collection.name,
            id=str(collection.id),
            count=int(collection.count()),
            metadata=dict(collection.metadata or {}),
            configuration=_configuration(collection) if with_configuration else None,
            dimension=_dimension(collection),
        )
    for missing in sorted((wanted or set()) - set(found)):
        found[missing] = CollectionInfo(name=missing, id="", count=-1)
    return ServerInventory(
        server=spec.describe(),
        collections=[found[n] for n in sorted(found)],
        heartbeat_ns=heartbeat,
    )


@dataclass(frozen=True)
class CountCheck:
    """Actual counts against expected counts with a tolerance."""

    ok: bool
    expected_total: int
    actual_total: int
    tolerance: int
    mismatches: dict[str, dict[str, int]]
    missing: list[str]
    unexpected: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.ok:
            return f"{self.actual_total} records, as expected ({self.expected_total} +/- {self.tolerance})"
        parts = []
        if self.missing:
            parts.append("missing collections: " + ", ".join(self.missing))
        for name, pair in sorted(self.mismatches.items()):
            parts.append(f"{name}: {pair['actual']} records, expected {pair['expected']}")
        if abs(self.actual_total - self.expected_total) > self.tolerance:
            parts.append(
                f"total {self.actual_total} is off expected {self.expected_total} by more than {self.tolerance}"
            )
        return "; ".join(parts)


def compare_counts(
    actual: Mapping[str, int],
    expected: Mapping[str, int],
    tolerance: int = 0,
    per_collection_tolerance: Optional[int] = None,
) -> CountCheck:
    """Compare ``actual`` counts with ``expected`` ones.

    The total may differ by ``tolerance`` records; each collection by
    ``per_collection_tolerance`` (default: the same ``tolerance``). A missing
    expected collection always fails. Collections nobody expected are listed
    but do not fail the check.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    per = tolerance if per_collection_tolerance is None else per_collection_tolerance
    missing = sorted(n for n in expected if actual.get(n, -1) < 0)
    mismatches = {
        n: {"expected": int(expected[n]), "actual": int(actual[n])}
        for n in expected
        if n not in missing and abs(int(actual[n]) - int(expected[n])) > per
    }
    unexpected = sorted(n for n in actual if n not in expected and actual[n] >= 0)
    expected_total = sum(int(v) for v in expected.values())
    actual_total = sum(int(actual[n]) for n in expected if n not in missing)
    ok = not missing and not mismatches and abs(actual_total - expected_total) <= tolerance
    return CountCheck(ok, expected_total, actual_total, tolerance, mismatches, missing, unexpected)
