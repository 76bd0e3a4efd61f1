"""Turning ``get()`` pages into engine Records (pages are read by source.py)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .records import Record


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
