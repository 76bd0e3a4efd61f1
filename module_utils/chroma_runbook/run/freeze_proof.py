"""Proving a write freeze through the front door, the way the apps reach the source.

One pass, plain HTTP, in the order the runbook gives it:

1. the source's API behind the front door (``/api/v1`` for a 0.4/0.5 source);
2. a harmless probe (a write to a collection that cannot exist) until it is refused, so
   an nginx reload has taken effect;
3. reads must pass: list collections, get one record, query with its embedding (Chroma
   serves the last two as POST, so a freeze that refused every POST would fail here);
4. two canary writes must be refused with ``503 WritesFrozen``: create a collection, add a
   record to an existing one. A canary that got through is taken back on the source
   directly, and the freeze is reported unproven.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..io.connection import ConnectionSpec
from ..io.source import JsonHttp, SourceRefused, probe_version

# A collection id that cannot exist: a write to it is refused (503) when frozen, 404 when open.
PROBE_COLLECTION_ID = "00000000-0000-4000-8000-00000000dead"
CANARY_DOCUMENT = "chroma-runbook canary: must never be stored"


class FreezeNotProven(RuntimeError):
    """The front door did not refuse writes, or refused reads; ``result`` holds what was seen."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class CanaryNames:
    collection: str
    record_id: str


def db_path(spec: ConnectionSpec, legacy: bool) -> str:
    """Where collections live: ``/api/v1`` on a 0.4/0.5 server, the tenant's database on 1.x."""
    return "/api/v1" if legacy else f"/api/v2/tenants/{spec.tenant}/databases/{spec.database}"


def refused(status: int, body: Any) -> bool:
    return status == 503 and isinstance(body, dict) and body.get("error") == "WritesFrozen"


def _short(body: Any) -> str:
    return str(body)[:200]


class FreezeProof:
    """The proof against one front door; ``source`` is where a canary that got through is taken back."""

    def __init__(self, front_door: ConnectionSpec, source: Optional[ConnectionSpec], names: CanaryNames,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.front, self.source, self.names = front_door, source, names
        self.http = JsonHttp(front_door)
        self.sleep, self.clock = sleep, clock
        self.result: dict[str, Any] = {"front_door": front_door.describe(), "cleaned_up": []}

    def run(self, settle_timeout_s: float, settle_interval_s: float) -> dict[str, Any]:
        version = probe_version(self.front)
        self.result["server_version"] = version.as_dict()
        self.db = db_path(self.front, version.legacy)
        self.settle(settle_timeout_s, settle_interval_s)
        collection, embedding = self.reads()
        self.canaries(collection, embedding)
        return self.result

    def settle(self, timeout_s: float, interval_s: float) -> None:
        """Wait until the harmless probe write is refused (the freeze took effect)."""
        deadline, attempts = self.clock() + timeout_s, 0
        while True:
            attempts += 1
            status, body = self.http.request("POST", f"{self.db}/collections/{PROBE_COLLECTION_ID}/add",
                                             {"ids": [self.names.record_id], "embeddings": [[0.0]]})
            self.result["settle"] = {"attempts": attempts, "status": status}
            if status == 503:
                return
            if self.clock() + interval_s > deadline:
                raise FreezeNotProven(
                    f"Write freeze NOT proven at {self.front.describe()}: a probe write was still answered "
                    f"HTTP {status} ({_short(body)}) after {timeout_s:g} s ({attempts} tries); it must be 503 once "
                    f"the freeze holds. Nothing was migrated.", self.result)
            self.sleep(interval_s)

    def _read(self, what: str, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.http.request(method, path, body)
        self.result.setdefault("reads", {})[what] = status
        if status != 200:
            raise FreezeNotProven(
                f"The freeze at {self.front.describe()} refuses reads: {what} ({method} {path}) answered HTTP "
                f"{status} ({_short(answer)}); reads must still work. Nothing was migrated.", self.result)
        return answer

    def reads(self) -> tuple[dict[str, Any], Optional[list[float]]]:
        listed = self._read("list collections", "GET", f"{self.db}/collections?limit=1&offset=0")
        if not isinstance(listed, list) or not listed:
            raise FreezeNotProven(
                f"The source behind {self.front.describe()} has no collection: the add canary cannot be tried, "
                f"the freeze is unproven. Nothing was migrated.", self.result)
        collection = listed[0]
        self.result["collection"] = collection.get("name")
        got = self._read("get one record", "POST", f"{self.db}/collections/{collection['id']}/get",
                         {"limit": 1, "include": ["embeddings"]})
        embeddings = (got or {}).get("embeddings") or []
        embedding = list(embeddings[0]) if embeddings else None
        if embedding is not None:
            self._read("query with its embedding", "POST", f"{self.db}/collections/{collection['id']}/query",
                       {"query_embeddings": [embedding], "n_results": 1, "include": ["distances"]})
        return collection, embedding

    def canaries(self, collection: dict[str, Any], embedding: Optional[list[float]]) -> None:
        create = self.http.request("POST", f"{self.db}/collections",
                                   {"name": self.names.collection, "get_or_create": True})
        add = self.http.request("POST", f"{self.db}/collections/{collection['id']}/add",
                                {"ids": [self.names.record_id], "embeddings": [embedding or [0.0]],
                                 "documents": [CANARY_DOCUMENT]})
        self.result["canaries"] = {
            "create": {"status": create[0], "refused": refused(*create), "answer": _short(create[1])},
            "add": {"status": add[0], "refused": refused(*add), "answer": _short(add[1]),
                    "collection": collection.get("name")},
        }
        if refused(*create) and refused(*add):
            return
        self.take_back(collection, create_status=create[0], add_status=add[0])
        raise FreezeNotProven(
            f"Write freeze NOT proven at {self.front.describe()}: create collection answered {create[0]} "
            f"({_short(create[1])}), add record to {collection.get('name')} answered {add[0]} ({_short(add[1])}); "
            f"both must be 503 WritesFrozen. Nothing was migrated"
            + (f"; taken back on the source: {', '.join(self.result['cleaned_up'])}" if self.result["cleaned_up"]
               else "") + ".", self.result)

    def take_back(self, collection: dict[str, Any], create_status: int, add_status: int) -> None:
        """Remove what a canary that got through wrote, directly on the source."""
        if self.source is None:
            return
        http = JsonHttp(self.source)
        if create_status in (200, 201):
            status, _ = http.request("DELETE", f"{self.db}/collections/{self.names.collection}")
            if status in (200, 204, 404):
                self.result["cleaned_up"].append(f"collection {self.names.collection}")
        if add_status in (200, 201):
            status, _ = http.request("POST", f"{self.db}/collections/{collection['id']}/delete",
                                     {"ids": [self.names.record_id]})
            if status in (200, 204, 404):
                self.result["cleaned_up"].append(f"record {self.names.record_id} in {collection.get('name')}")


def prove_freeze(front_door: ConnectionSpec, source: Optional[ConnectionSpec], names: CanaryNames,
                 settle_timeout_s: float = 10.0, settle_interval_s: float = 0.25) -> dict[str, Any]:
    """Run the proof; raise FreezeNotProven (with what was seen) or SourceRefused (no Chroma answers)."""
    return FreezeProof(front_door, source, names).run(settle_timeout_s, settle_interval_s)


__all__ = ["CanaryNames", "FreezeNotProven", "FreezeProof", "SourceRefused", "db_path", "prove_freeze", "refused"]
