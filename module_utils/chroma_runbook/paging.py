"""Reading a collection in stable pages (writes must be frozen)."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .records import Record

INCLUDE_ALL = ["embeddings", "documents", "metadatas"]


def iter_pages(collection: Any, page_size: int) -> Iterator[list[Record]]:
    """Yield the collection's records ``page_size`` at a time, in insertion order.

    ``get(limit, offset)`` pages are stable only while writes are frozen.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    offset = 0
    while True:
        page = collection.get(limit=page_size, offset=offset, include=INCLUDE_ALL)
        ids = page.get("ids") or []
        if not ids:
            return
        yield page_to_records(page, collection.name)
        offset += len(ids)
        if len(ids) < page_size:
            return


def page_to_records(page: dict[str, Any], collection_name: str) -> list[Record]:
    """Turn a ``get()`` result into Records (embeddings as float32 arrays)."""
    ids = page["ids"]
    embeddings = page.get("embeddings")
    documents = page.get("documents")
    metadatas = page.get("metadatas")
    records = []
    for i, rid in enumerate(ids):
        emb = None
        if embeddings is not None and len(embeddings) > i and embeddings[i] is not None:
            emb = np.asarray(embeddings[i], dtype=np.float32)
        records.append(
            Record(
                id=rid,
                embedding=emb,
                document=documents[i] if documents is not None else None,
                metadata=dict(metadatas[i]) if metadatas is not None and metadatas[i] is not None else None,
                source_collection=collection_name,
            )
        )
    return records


def collection_settings(collection: Any) -> dict[str, Any]:
    """What recreating ``collection`` elsewhere needs: metadata and configuration."""
    return {
        "name": collection.name,
        "metadata": dict(collection.metadata or {}),
        "configuration": collection.configuration_json,
    }
