"""What a Chroma server holds: collections, their counts and configuration.

Used by the preflight (source counts against expected counts, target empty or
holding only this run's collections) and by the rollback (source against the
snapshot manifest). Read-only: nothing here writes to a server.
"""
from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import quote

from .connection import ConnectionSpec
from .source import HttpSource, configuration_of, open_source, peek_dimension, probe_version

# Collections listed per request when reading a server over HTTP.
LIST_PAGE = 100


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
    version: dict[str, Any] = field(default_factory=dict)   # what the server said (source.ServerVersion)

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
            "server_version": self.version,
            "heartbeat_ns": self.heartbeat_ns,
            "total": self.total,
            "vector_bytes": self.vector_bytes(),
            "collection_names": [c.name for c in self.collections],
            "counts": self.counts(),
            "collections": {c.name: asdict(c) for c in self.collections},
        }


class RestReader:
    """Chroma 1.x's v2 REST API, read-only, with plain urllib.

    Importing chromadb costs seconds; an inventory needs four GET routes, so
    1.x servers given by URL are read this way (0.4/0.5 servers and embedded
    ``path`` directories go through source.open_source).
    """

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec
        bare_url, self.headers = spec.request_parts()
        self.base = f"{bare_url}/api/v2"
        self.db = f"{self.base}/tenants/{quote(spec.tenant, safe='')}/databases/{quote(spec.database, safe='')}"
        self.context = None if spec.ssl_verify else ssl._create_unverified_context()  # noqa: SLF001 - operator asked

    def get(self, url: str) -> Any:
        request = urllib.request.Request(url, headers={"Accept": "application/json", **self.headers})
        with urllib.request.urlopen(request, timeout=self.spec.timeout, context=self.context) as resp:  # noqa: S310
            return json.loads(resp.read().decode("utf-8"))

    def heartbeat(self) -> int:
        return int(self.get(f"{self.base}/heartbeat").get("nanosecond heartbeat", 0))

    def collections(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.get(f"{self.db}/collections?limit={LIST_PAGE}&offset={len(out)}")
            out.extend(page)
            if len(page) < LIST_PAGE:
                return out

    def count(self, collection_id: str) -> int:
        return int(self.get(f"{self.db}/collections/{quote(collection_id, safe='')}/count"))


def _read_rest(spec: ConnectionSpec, wanted: Optional[set[str]], with_configuration: bool) -> tuple[int, dict[str, CollectionInfo]]:
    reader = RestReader(spec)
    heartbeat = reader.heartbeat()
    found: dict[str, CollectionInfo] = {}
    for raw in reader.collections():
        if wanted is not None and raw["name"] not in wanted:
            continue
        config = raw.get("configuration_json")
        found[raw["name"]] = CollectionInfo(
            name=raw["name"],
            id=str(raw["id"]),
            count=reader.count(str(raw["id"])),
            metadata=dict(raw.get("metadata") or {}),
            configuration=dict(config) if with_configuration and isinstance(config, Mapping) else None,
            dimension=int(raw["dimension"]) if raw.get("dimension") is not None else None,
        )
    return heartbeat, found


def _read_client(spec: ConnectionSpec, wanted: Optional[set[str]], with_configuration: bool,
                 client: Any = None) -> tuple[int, dict[str, CollectionInfo]]:
    """Through the one source reader: an embedded directory (private copy, old ones refused)
    or a 0.4/0.5 server over /api/v1."""
    client = client if client is not None else open_source(spec, "server")
    heartbeat = int(client.heartbeat())
    found: dict[str, CollectionInfo] = {}
    for collection in client.list_collections():
        if wanted is not None and collection.name not in wanted:
            continue
        found[collection.name] = CollectionInfo(
            name=collection.name,
            id=str(collection.id),
            count=int(collection.count()),
            metadata=dict(collection.metadata or {}),
            configuration=configuration_of(collection) if with_configuration else None,
            dimension=peek_dimension(collection),
        )
    return heartbeat, found


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
    wanted = None if names is None else set(names)
    version = probe_version(spec) if spec.url else None
    if version is not None and not version.legacy:
        heartbeat, found = _read_rest(spec, wanted, with_configuration)
    else:
        client = HttpSource(spec, version) if version is not None else None
        heartbeat, found = _read_client(spec, wanted, with_configuration, client)
    for missing in sorted((wanted or set()) - set(found)):
        found[missing] = CollectionInfo(name=missing, id="", count=-1)
    return ServerInventory(
        server=spec.describe(),
        collections=[found[n] for n in sorted(found)],
        heartbeat_ns=heartbeat,
        version=version.as_dict() if version is not None else {"version": "1.x", "api": "embedded", "legacy": False},
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
