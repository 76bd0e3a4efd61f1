"""Phase 1: reading the source collections (paged in the server's stable order, writes frozen),
through the one source reader (source.py)."""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from ..io import source
from ..io.paging import page_to_records
from ..io.records import Record


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


def index_configuration(configuration: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The parts of ``configuration_json`` that recreate the index (no embedding function)."""
    if not configuration:
        return None
    out = {k: v for k, v in configuration.items() if k in ("hnsw", "spann") and v}
    return out or None


def select_collections(client: Any, wanted: Optional[Sequence[str]]) -> list[SourceCollection]:
    """The source collections to migrate: ``wanted`` in its order, else all sorted by name."""
    out = []
    for col in source.select_collections(client, wanted):
        settings = source.collection_settings(col)
        out.append(SourceCollection(
            name=col.name,
            count=int(col.count()),
            metadata=settings["metadata"],
            configuration=index_configuration(settings["configuration"]),
            space=source.distance_space(settings["metadata"], settings["configuration"]),
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
            for wanted, offset, collection in _page_plan(client, sources, page_size):
                pending.append((wanted, pool.submit(_read_page, collection, offset, page_size)))
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
    for wanted in sources:
        collection = client.get_collection(wanted.name)
        for offset in range(0, wanted.count, page_size):
            yield wanted, offset, collection


def _read_page(collection: Any, offset: int, page_size: int) -> list[Record]:
    return page_to_records(source.read_page(collection, offset, page_size), collection.name)
