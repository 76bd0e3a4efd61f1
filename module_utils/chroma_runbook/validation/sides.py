"""Reading one side (source or target) once, page by page, into compact arrays."""
from __future__ import annotations

from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..io.paging import RECORD_DIGESTS
from ..io.source import INCLUDE_ALL, collection_space, iter_pages, select_collections


@dataclass
class CollectionData:
    """Everything the checks need from one collection, rows in insertion order."""

    name: str
    space: str
    ids: list[str]
    vectors: np.ndarray                 # (n, dim) float32; (0, 0) when empty
    documents: list[Optional[str]]
    metadatas: list[Optional[dict[str, Any]]]
    handle: Any = None                  # the chromadb collection (for queries)
    row: dict[str, int] = field(default_factory=dict)
    source_digests: Optional[list[bytes]] = None  # each row's io/fingerprint.record_digest (read from a snapshot)

    def __post_init__(self) -> None:
        self.row = {rid: i for i, rid in enumerate(self.ids)}

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def dimension(self) -> Optional[int]:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 and self.vectors.shape[0] else None


def read_collection(collection: Any, page_size: int) -> CollectionData:
    """All records of ``collection`` (embeddings as float32), page by page."""
    return assemble(collection, list(iter_pages(collection, page_size)))


def assemble(collection: Any, pages: list[dict[str, Any]]) -> CollectionData:
    """One CollectionData from ``get()`` pages in offset order."""
    ids: list[str] = []
    docs: list[Optional[str]] = []
    metas: list[Optional[dict[str, Any]]] = []
    blocks: list[np.ndarray] = []
    for page in pages:
        n = len(page["ids"])
        if not n:
            continue
        ids.extend(page["ids"])
        docs.extend(page.get("documents") or [None] * n)
        metas.extend(page.get("metadatas") or [None] * n)
        blocks.append(_page_matrix(page.get("embeddings"), n, collection.name, len(ids) - n))
    dims = {b.shape[1] for b in blocks if b.size}
    if len(dims) > 1:
        raise ValueError(f"collection {collection.name}: pages with different dimensions {sorted(dims)}")
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.float32)
    return CollectionData(collection.name, collection_space(collection), ids, vectors, docs, metas, collection)


class ParallelReader:
    """Fetches the pages of many collections (of one or two servers) with a few threads.

    Offsets come from ``count()``; pages are stable only while writes are frozen, so
    the assembled ids are checked against the count (a moving collection is an error).
    """

    def __init__(self, workers: int = 4) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def submit(self, collection: Any, page_size: int,
               include: Sequence[str] = tuple(INCLUDE_ALL)) -> Callable[[], CollectionData]:
        """Start fetching ``collection``; the returned callable waits and assembles it
        (without ``embeddings`` in ``include``: ids, documents, metadatas only, no vectors)."""
        total = int(collection.count())
        futures = [
            self.pool.submit(collection.get, limit=page_size, offset=offset, include=list(include))
            for offset in range(0, total, page_size)
        ]

        def result() -> CollectionData:
            data = assemble(collection, [f.result() for f in futures])
            if data.count != total or len(set(data.ids)) != total:
                raise ValueError(f"collection {collection.name} changed while it was read "
                                 f"({total} counted, {data.count} read): are writes frozen?")
            return data

        return result

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _page_matrix(raw: Any, n: int, name: str, offset: int) -> np.ndarray:
    if raw is None and n:  # read without embeddings (totals): no vectors at all
        return np.zeros((0, 0), dtype=np.float32)
    if raw is None or len(raw) != n:
        raise ValueError(f"collection {name}: page at offset {offset} came back without all embeddings")
    try:
        return np.asarray(raw, dtype=np.float32).reshape(n, -1)
    except ValueError as exc:
        raise ValueError(f"collection {name}: ragged embeddings in the page at offset {offset}: {exc}") from exc


def start_side(reader: ParallelReader, client: Any, names: Sequence[str], page_size: int,
               must_exist: bool, side: str) -> dict[str, Callable[[], CollectionData]]:
    """Start reading the named collections of one server; absent ones are skipped unless ``must_exist``."""
    if must_exist:
        return {c.name: reader.submit(c, page_size) for c in select_collections(client, names, side)}
    available = {c.name: c for c in client.list_collections()}
    return {n: reader.submit(available[n], page_size) for n in names if n in available}


def finish_side(pending: dict[str, Callable[[], CollectionData]]) -> dict[str, CollectionData]:
    """Wait for every collection started by :func:`start_side`."""
    return {name: wait() for name, wait in pending.items()}


def read_snapshot_side(snapshot_dir: str, names: Optional[Sequence[str]], client: Any) -> dict[str, CollectionData]:
    """The source's records from a verified logical snapshot (local files: much faster than paging
    through the server); ``client``'s collections are attached for the recall baseline queries."""
    from ..snapshot.frozen_source import SnapshotSource

    snapshot = SnapshotSource(snapshot_dir)  # the manifest and every checksum verified
    why_not = snapshot.covers(list(names) if names else [c.name for c in snapshot.list_collections()])
    if why_not:
        raise ValueError(f"source_snapshot {snapshot_dir}: {why_not}")
    handles = {c.name: c for c in client.list_collections()}
    out: dict[str, CollectionData] = {}
    for name in (list(names) if names else [c.name for c in snapshot.list_collections()]):
        collection = snapshot.get_collection(name)
        every = collection.get()
        vectors = every["embeddings"] if collection.count() else np.zeros((0, 0), dtype=np.float32)
        out[name] = CollectionData(name, collection_space(collection), every["ids"], vectors, every["documents"],
                                   every["metadatas"], handles.get(name), source_digests=every.get(RECORD_DIGESTS))
    return out


def list_names(client: Any) -> list[str]:
    """Collection names of a server, sorted."""
    return sorted(c.name for c in client.list_collections())
