"""Phase 1: reading the source collections (paged, in insertion order, writes frozen)."""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from .paging import INCLUDE_ALL, collection_settings, page_to_records
from .records import Record


@dataclass(frozen=True)
class SourceCollection:
    """What the migration needs to know about one source collection."""

    name: str
    count: int
    metadata: dict[str, Any]
    configuration: Optional[dict[str, Any]]
    space: str

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "space": self.space}


def distance_space(metadata: Optional[dict[str, Any]], configuration: Optional[dict[str, Any]]) -> str:
    """``hnsw:space`` metadata overrides the configuration; Chroma's default is l2."""
    if metadata and metadata.get("hnsw:space"):
        return str(metadata["hnsw:space"])
    for index in ("hnsw", "spann"):
        conf = (configuration or {}).get(index) or {}
        if isinstance(conf, dict) and conf.get("space"):
            return str(conf["space"])
    return "l2"


def index_configuration(configuration: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The parts of ``configuration_json`` that recreate the index (no embedding function)."""
    if not configuration:
        return None
    out = {k: v for k, v in configuration.items() if k in ("hnsw", "spann") and v}
    return out or None


def select_collections(client: Any, wanted: Optional[Sequence[str]]) -> list[SourceCollection]:
    """The source collections to migrate: ``wanted`` in its order, else all sorted by name."""
    existing = {c.name: c for c in client.list_collections()}
    if wanted:
        missing = [name for name in wanted if name not in existing]
        if missing:
            raise ValueError(
                f"collections: {missing} not found on the source (it has {sorted(existing)})"
            )
        names = list(dict.fromkeys(wanted))
    else:
        names = sorted(existing)
    out = []
    for name in names:
        col = client.get_collection(name)
        settings = collection_settings(col)
        out.append(SourceCollection(
            name=name,
            count=int(col.count()),
            metadata=settings["metadata"],
            configuration=index_configuration(settings["configuration"]),
            space=distance_space(settings["metadata"], settings["configuration"]),
        ))
    return out


def iter_source_records(client: Any, sources: Sequence[SourceCollection], page_size: int,
                        readers: int = 2, depth: int = 3) -> Iterator[tuple[SourceCollection, list[Record]]]:
    """Pages of every source collection in insertion order.

    ``readers`` threads fetch up to ``depth`` pages ahead (by offset: writes are frozen, so the
    count is known and pages are stable); pages are still yielded in order, so everything
    downstream (spool, batches, duplicate detection) is deterministic.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    with ThreadPoolExecutor(max_workers=max(1, readers), thread_name_prefix="chroma-export") as pool:
        pending: deque[tuple[SourceCollection, Future[list[Record]]]] = deque()
        try:
            for source, offset, collection in _page_plan(client, sources, page_size):
                pending.append((source, pool.submit(_read_page, collection, offset, page_size)))
                if len(pending) >= depth:
                    done_source, fut = pending.popleft()
                    yield done_source, fut.result()
            while pending:
                done_source, fut = pending.popleft()
                yield done_source, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


def _page_plan(client: Any, sources: Sequence[SourceCollection], page_size: int) -> Iterator[tuple[SourceCollection, int, Any]]:
    for source in sources:
        collection = client.get_collection(source.name)
        for offset in range(0, source.count, page_size):
            yield source, offset, collection


def _read_page(collection: Any, offset: int, page_size: int) -> list[Record]:
    page = collection.get(limit=page_size, offset=offset, include=INCLUDE_ALL)
    return page_to_records(page, collection.name)
