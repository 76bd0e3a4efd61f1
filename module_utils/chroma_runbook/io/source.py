"""The one reader of source collections, whatever Chroma version holds them.

Every step that reads the source (preflight counts, snapshot, migrate, validate,
rollback's source check) opens it with :func:`open_source`, which returns a
client-like object with the part of the chromadb API the readers use:
``list_collections()``, ``get_collection(name)``, ``heartbeat()``, and
collections with ``name``, ``id``, ``metadata``, ``configuration_json``,
``count()``, ``get(ids|limit+offset, include)`` and ``query(...)``.

- **Chroma 1.x** (``/api/v1`` answers 410, ``/api/v2/version`` answers): the
  chromadb 1.x client.
- **Chroma 0.4.x and 0.5.x** (``GET /api/v1/version`` answers e.g. "0.4.24"):
  plain HTTP on their v1 REST API (:class:`HttpSource`). 0.5.16+ also serves
  /api/v2, but v1 is served by every 0.4/0.5 release alike.
- **Anything else** is refused before anything is read, naming the version
  found and the supported ones (0.3.x: run chroma-migrate to 0.4 first).
- **``path:`` sources are never written.** The persist directory's version is
  read from its SQLite ``migrations`` table in read-only, immutable mode. An
  older directory is refused with the way to serve it with its own version
  (opening it with the 1.x embedded client would migrate it in place, one way).
  A 1.x directory is read from a private copy, because even a read through
  the embedded client rewrites ``chroma.sqlite3``.

``hnsw:space`` in the collection metadata decides the distance space (0.5.23's
``configuration_json`` says l2 for cosine collections); see :func:`distance_space`.
"""
from __future__ import annotations

import atexit
import itertools
import json
import re
import shutil
import sqlite3
import ssl
import tempfile
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence
from urllib.parse import quote

from .connection import ConnectionSpec, connect

INCLUDE_ALL = ["embeddings", "documents", "metadatas"]
# A read ahead (iter_pages) splits a collection that its page size would read in fewer than
# PAGES_TO_OVERLAP pages into that many, each of at least SMALLEST_OVERLAP_PAGE records: one or
# two pages leave nothing to overlap. Read in pages of 250, the lab source (8,832 x 768 in collections
# of 800 to 3,000) took 1.8-1.9 s against 2.1-2.5 s in pages of 1,000 (bench/bench_read_pages.py). A large
# collection keeps the page size asked for: each request costs the server a fixed part (one
# 40k x 768 collection read one page at a time: 10.2 s in pages of 250, 8.6 s in pages of 1,000;
# a page's cost does not grow with its offset in Chroma 1.5).
PAGES_TO_OVERLAP = 4
SMALLEST_OVERLAP_PAGE = 250
SUPPORTED = "Chroma 0.4.x and 0.5.x (read over their /api/v1 REST API) and Chroma 1.x"
LEGACY_SERIES = ("0.4", "0.5")
SQLITE_FILE = "chroma.sqlite3"
# Migrations chromadb 1.5.9 applies to a persist directory (dir -> highest version).
CURRENT_MIGRATIONS = {"embeddings_queue": 2, "metadb": 6, "sysdb": 10}


class SourceRefused(RuntimeError):
    """The source cannot be read safely: unsupported version, unreachable, or a directory to leave alone."""


# --------------------------------------------------------------------------- versions

@dataclass(frozen=True)
class ServerVersion:
    """What a server said about itself: its version and the API the runbook reads it with."""

    version: str
    api: str  # "v1" (0.4/0.5, plain HTTP) or "v2" (1.x, chromadb client)

    @property
    def legacy(self) -> bool:
        return self.api == "v1"

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "api": self.api, "legacy": self.legacy}


def check_version(version: str, where: str) -> str:
    """The API to read ``version`` with ("v1"/"v2"); raise SourceRefused for unsupported ones."""
    parts = re.match(r"^\s*(\d+)\.(\d+)", version or "")
    if not parts:
        raise SourceRefused(f"{where} answers version {version!r}, which is not a Chroma version; "
                            f"supported: {SUPPORTED}")
    major, minor = int(parts.group(1)), int(parts.group(2))
    if major >= 1:
        return "v2"
    if f"{major}.{minor}" in LEGACY_SERIES:
        return "v1"
    advice = " (first run chroma-migrate to 0.4, then migrate from that)" if (major, minor) < (0, 4) else ""
    raise SourceRefused(f"{where} runs Chroma {version}, which this runbook does not read{advice}; "
                        f"supported: {SUPPORTED}")


def probe_version(spec: ConnectionSpec) -> ServerVersion:
    """Ask ``GET /api/v1/version`` (0.x) then ``/api/v2/version`` (1.x answers "1.0.0" there)."""
    http = JsonHttp(spec)
    status, body = http.request("GET", "/api/v1/version")
    if status == 200 and isinstance(body, str):
        return ServerVersion(body, check_version(body, spec.describe()))
    v1_said = f"{status} {_short(body)}"
    status, body = http.request("GET", "/api/v2/version")
    if status == 200 and isinstance(body, str):
        return ServerVersion(body, check_version(body, spec.describe()))
    raise SourceRefused(f"{spec.describe()} does not answer like a Chroma server: GET /api/v1/version gave "
                        f"{v1_said}, GET /api/v2/version gave {status} {_short(body)}; supported: {SUPPORTED}")


# --------------------------------------------------------------------------- plain HTTP

class JsonHttp:
    """JSON over urllib with the connection's headers, TLS setting and timeout."""

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec
        self.context = None if spec.ssl_verify else ssl._create_unverified_context()  # noqa: SLF001 - asked for

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON or text); a server that cannot be reached raises SourceRefused."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", **dict(self.spec.headers)}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.spec.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.spec.timeout, context=self.context) as resp:  # noqa: S310
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except OSError as exc:
            raise SourceRefused(f"cannot connect to {self.spec.describe()}: {exc}") from exc

    def json(self, method: str, path: str, body: Any = None, what: str = "") -> Any:
        status, answer = self.request(method, path, body)
        if status != 200:
            raise RuntimeError(f"{self.spec.describe()}: {what or path} failed: HTTP {status} {_short(answer)}")
        return answer


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _short(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return text[:200]


class HttpCollection:
    """One collection of a 0.4/0.5 server, read over /api/v1 (duck-types chromadb's Collection)."""

    def __init__(self, source: "HttpSource", raw: Mapping[str, Any]) -> None:
        self._source = source
        self.name = str(raw["name"])
        self.id = str(raw["id"])
        self.metadata = dict(raw.get("metadata") or {})
        # 0.5.x says l2 here for cosine collections: hnsw:* metadata is the truth (distance_space)
        self.configuration_json = raw.get("configuration_json")
        self._path = f"/api/v1/collections/{quote(self.id, safe='')}"

    def count(self) -> int:
        return int(self._source.http.json("GET", f"{self._path}/count", what=f"count of {self.name}"))

    def get(self, ids: Optional[Sequence[str]] = None, limit: Optional[int] = None, offset: Optional[int] = None,
            include: Optional[Sequence[str]] = None, where: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        body: dict[str, Any] = {"include": list(include if include is not None else ["documents", "metadatas"])}
        for key, value in (("ids", None if ids is None else list(ids)), ("limit", limit), ("offset", offset),
                           ("where", where)):
            if value is not None:
                body[key] = value
        what = f"get from {self.name} (offset {offset}, limit {limit})" if ids is None else f"get of ids from {self.name}"
        return self._source.http.json("POST", f"{self._path}/get", body, what)

    def query(self, query_embeddings: Any, n_results: int = 10, where: Optional[dict[str, Any]] = None,
              include: Optional[Sequence[str]] = None) -> dict[str, Any]:
        vectors = [[float(x) for x in row] for row in query_embeddings]
        body: dict[str, Any] = {"query_embeddings": vectors, "n_results": int(n_results),
                                "include": list(include if include is not None else ["distances"])}
        if where:
            body["where"] = where
        return self._source.http.json("POST", f"{self._path}/query", body, f"query of {self.name}")


class HttpSource:
    """A Chroma 0.4.x/0.5.x server read over its v1 REST API (duck-types the chromadb client)."""

    def __init__(self, spec: ConnectionSpec, version: ServerVersion) -> None:
        self.spec, self.version = spec, version
        self.http = JsonHttp(spec)
        self._scope = f"tenant={quote(spec.tenant, safe='')}&database={quote(spec.database, safe='')}"

    def heartbeat(self) -> int:
        answer = self.http.json("GET", "/api/v1/heartbeat", what="heartbeat")
        return int(answer.get("nanosecond heartbeat", 0))

    def list_collections(self) -> list[HttpCollection]:
        raw = self.http.json("GET", f"/api/v1/collections?{self._scope}", what="list of collections")
        return [HttpCollection(self, item) for item in raw]

    def get_collection(self, name: str, **_: Any) -> HttpCollection:
        status, raw = self.http.request("GET", f"/api/v1/collections/{quote(name, safe='')}?{self._scope}")
        if status != 200 or not isinstance(raw, dict):
            raise ValueError(f"collection {name} not found on {self.spec.describe()}: HTTP {status} {_short(raw)}")
        return HttpCollection(self, raw)


# --------------------------------------------------------------------------- persist directories

@dataclass(frozen=True)
class PersistVersion:
    """What a persist directory's migrations table says about the Chroma that wrote it."""

    label: str          # "0.4.x", "0.5.x (or 0.6.x)", "1.x", "newer than this runbook's chromadb"
    migrations: int
    current: bool       # readable by chromadb 1.5.9 without migrating anything

    @property
    def serve_with(self) -> str:
        return {"0.4.x": "chromadb==0.4.24", "0.5.x (or 0.6.x)": "chromadb==0.5.23"}.get(self.label, "its own chromadb")


def _sqlite_uri(path: Path) -> str:
    return f"file:{quote(str(path))}?mode=ro&immutable=1"


def persist_version(directory: str | Path) -> PersistVersion:
    """Read the directory's migrations table read-only (SQLite immutable mode: no lock, no journal)."""
    root = Path(directory)
    if not root.is_dir():
        raise SourceRefused(f"source.path {root} is not a directory")
    db = root / SQLITE_FILE
    if not db.is_file():
        if any(root.glob("chroma-*.parquet")) or (root / "chroma.parquet").exists():
            raise SourceRefused(f"source.path {root} is a Chroma 0.3.x (duckdb+parquet) persist directory; "
                                f"first run chroma-migrate to 0.4, then migrate from that; supported: {SUPPORTED}")
        raise SourceRefused(f"source.path {root} holds no Chroma persist directory (no {SQLITE_FILE}); "
                            "nothing is created there")
    try:
        with sqlite3.connect(_sqlite_uri(db), uri=True) as conn:
            rows = conn.execute("SELECT dir, version FROM migrations").fetchall()
    except sqlite3.Error as exc:
        raise SourceRefused(f"source.path {root}: cannot read the migrations table of {db}: {exc}") from exc
    highest: dict[str, int] = {}
    for folder, version in rows:
        highest[str(folder)] = max(int(version), highest.get(str(folder), 0))
    if any(highest.get(k, 0) > v for k, v in CURRENT_MIGRATIONS.items()) or set(highest) - set(CURRENT_MIGRATIONS):
        return PersistVersion("newer than this runbook's chromadb", len(rows), False)
    if all(highest.get(k, 0) >= v for k, v in CURRENT_MIGRATIONS.items()):
        return PersistVersion("1.x", len(rows), True)
    label = "0.4.x" if highest.get("sysdb", 0) <= 4 else "0.5.x (or 0.6.x)"
    return PersistVersion(label, len(rows), False)


def refuse_old_directory(root: Path, found: PersistVersion) -> SourceRefused:
    """The refusal for a directory the embedded client must not open, with the way to serve it."""
    venv = f"/opt/chroma-{found.serve_with.split('==')[-1]}" if "==" in found.serve_with else "/opt/chroma-old"
    return SourceRefused(
        f"source.path {root} is a Chroma {found.label} persist directory ({found.migrations} migrations applied). "
        f"It is left untouched: chromadb 1.x would migrate it in place, one way, and the old server could no "
        f"longer open it. Serve it with its own version and migrate from its URL: "
        f"python3 -m venv {venv} && {venv}/bin/pip install {found.serve_with}; "
        f"{venv}/bin/chroma run --path {root} --host 127.0.0.1 --port 8000 "
        f"then use source: {{url: http://127.0.0.1:8000}} "
        f"(in this project's lab: python -m lab.legacy serve --path {root}). Supported: {SUPPORTED}")


def private_copy(root: Path) -> Path:
    """A copy of a 1.x persist directory to open instead of it (removed when the process exits)."""
    holder = Path(tempfile.mkdtemp(prefix="chroma-runbook-source-"))
    atexit.register(shutil.rmtree, holder, True)
    copy = holder / "persist"
    shutil.copytree(root, copy, symlinks=True)
    return copy


# --------------------------------------------------------------------------- opening a source

def describe_source(spec: ConnectionSpec | Mapping[str, Any]) -> dict[str, Any]:
    """Version facts for reports and preflight, refusing unsupported sources the same way as open_source."""
    if not isinstance(spec, ConnectionSpec):
        spec = ConnectionSpec.from_dict(spec, "source")
    if spec.path:
        found = persist_version(spec.path)
        if not found.current:
            raise refuse_old_directory(Path(spec.path), found)
        return {"version": found.label, "api": "embedded (private copy)", "legacy": False}
    return probe_version(spec).as_dict()


def open_source(spec: ConnectionSpec | Mapping[str, Any], side: str = "source") -> Any:
    """A client-like reader of ``spec`` (see the module docstring); refuses what it cannot read safely."""
    if not isinstance(spec, ConnectionSpec):
        spec = ConnectionSpec.from_dict(spec, side)
    if spec.path:
        root = Path(spec.path)
        found = persist_version(root)
        if not found.current:
            raise refuse_old_directory(root, found)
        copy = private_copy(root)
        return connect(ConnectionSpec(path=str(copy), tenant=spec.tenant, database=spec.database))
    version = probe_version(spec)
    if version.legacy:
        return HttpSource(spec, version)
    return connect(spec)


def require_current(spec: ConnectionSpec, side: str = "target") -> None:
    """Writes go to Chroma 1.x only: refuse a 0.x server (by URL) before anything is written."""
    if spec.url:
        version = probe_version(spec)
        if version.legacy:
            raise SourceRefused(f"the {side} {spec.describe()} runs Chroma {version.version}; the runbook writes "
                                "to Chroma 1.x only")


# --------------------------------------------------------------------------- reading collections

def distance_space(metadata: Optional[Mapping[str, Any]], configuration: Optional[Mapping[str, Any]]) -> str:
    """``hnsw:space`` metadata overrides the configuration (0.5.23 says l2 there for cosine); default l2."""
    if metadata and metadata.get("hnsw:space"):
        return str(metadata["hnsw:space"])
    for index in ("hnsw", "spann"):
        conf = (configuration or {}).get(index) or {}
        if isinstance(conf, Mapping) and conf.get("space"):
            return str(conf["space"])
    return "l2"


def collection_space(collection: Any) -> str:
    """:func:`distance_space` of a collection object."""
    return distance_space(collection.metadata or {}, configuration_of(collection))


def configuration_of(collection: Any) -> Optional[dict[str, Any]]:
    """``configuration_json`` as a plain dict (None when absent or not a mapping)."""
    raw = getattr(collection, "configuration_json", None)
    return dict(raw) if isinstance(raw, Mapping) else None


def collection_settings(collection: Any) -> dict[str, Any]:
    """What recreating ``collection`` elsewhere needs: name, metadata and configuration."""
    return {"name": collection.name, "metadata": dict(collection.metadata or {}),
            "configuration": configuration_of(collection)}


def select_collections(client: Any, wanted: Optional[Sequence[str]], side: str = "source") -> list[Any]:
    """Collection objects: ``wanted`` in its order (duplicates dropped), else all sorted by name;
    a name the server lacks is a ValueError naming it and what exists."""
    existing = {c.name: c for c in client.list_collections()}
    if not wanted:
        return [existing[name] for name in sorted(existing)]
    missing = [name for name in wanted if name not in existing]
    if missing:
        raise ValueError(f"collections {missing} do not exist on the {side} (it has: {sorted(existing)})")
    return [existing[name] for name in dict.fromkeys(wanted)]


def read_page(collection: Any, offset: int, limit: int, include: Sequence[str] = tuple(INCLUDE_ALL)) -> dict[str, Any]:
    """One ``get(limit, offset)`` page (stable only while writes are frozen)."""
    return collection.get(limit=limit, offset=offset, include=list(include))


def overlap_page_size(count: int, page_size: int) -> int:
    """Records per page for a read ahead of ``count`` records: ``page_size``, or less for a collection
    it would read in fewer than PAGES_TO_OVERLAP pages (never below SMALLEST_OVERLAP_PAGE, nor above
    ``page_size``)."""
    return min(page_size, max(SMALLEST_OVERLAP_PAGE, -(-count // PAGES_TO_OVERLAP)))


def iter_pages(collection: Any, page_size: int, read_ahead: int = 2) -> Iterator[dict[str, Any]]:
    """Every page of ``collection`` in the server's stable order, ``page_size`` records at a time
    at the most.

    With ``read_ahead`` > 0 (a frozen source: the offsets come from ``count()``), two threads keep
    ``read_ahead`` + 1 more pages in flight while the caller handles this one, so the server's work,
    the parsing of the answers and the caller's work overlap; a small collection is read in smaller
    pages (overlap_page_size), so that there is something to overlap. Pages are still yielded in
    order, and past the counted records (a count that went stale) the rest is read one page at a
    time until a short page. 0 reads one page at a time.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    if read_ahead < 1:
        return _pages_in_order(collection, page_size, 0)
    return _pages_ahead(collection, page_size, read_ahead)


def _pages_ahead(collection: Any, largest: int, read_ahead: int) -> Iterator[dict[str, Any]]:
    counted = int(collection.count())
    page_size = overlap_page_size(counted, largest)
    offsets = iter(range(0, counted, page_size))
    offset, last = 0, page_size
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="chroma-read-ahead") as pool:
        pending: deque[Future[dict[str, Any]]] = deque()
        try:
            for start in itertools.islice(offsets, read_ahead + 1):
                pending.append(pool.submit(read_page, collection, start, page_size))
            while pending:
                page = pending.popleft().result()
                last = len(page.get("ids") or [])
                if not last:
                    return
                for start in itertools.islice(offsets, 1):
                    pending.append(pool.submit(read_page, collection, start, page_size))
                yield page
                offset += last
                if last < page_size:
                    return
        finally:
            for future in pending:
                future.cancel()
    yield from _pages_in_order(collection, page_size, offset)


def _pages_in_order(collection: Any, page_size: int, offset: int) -> Iterator[dict[str, Any]]:
    while True:
        page = read_page(collection, offset, page_size)
        ids = page.get("ids") or []
        if not ids:
            return
        yield page
        offset += len(ids)
        if len(ids) < page_size:
            return


def peek_dimension(collection: Any) -> Optional[int]:
    """Length of the first record's embedding (None for an empty collection)."""
    embeddings = collection.get(limit=1, include=["embeddings"]).get("embeddings")
    if embeddings is None or len(embeddings) == 0 or embeddings[0] is None:
        return None
    return int(len(embeddings[0]))
