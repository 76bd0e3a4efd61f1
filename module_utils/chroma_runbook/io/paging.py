"""Turning ``get()`` pages into engine Records (pages are read by source.py)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .records import Record

# A page from a verified snapshot carries each record's io/fingerprint.record_digest under this key
# (snapshot/frozen_source.py); a server's pages do not.
RECORD_DIGESTS = "record_digests"


def page_matrix(embeddings: Any, n: int) -> Optional[np.ndarray]:
    """A page's embeddings as one float32 matrix, converted at once, when the client gave a 2-D array of
    ``n`` rows (chromadb 1.x gives float64); None for anything else (lists, missing ones), taken row by row."""
    if (isinstance(embeddings, np.ndarray) and embeddings.ndim == 2 and embeddings.shape[0] == n
            and embeddings.dtype.kind in "fiu"):
        return np.ascontiguousarray(embeddings, dtype=np.float32)
    return None


def page_to_records(page: dict[str, Any], collection_name: str) -> list[Record]:
    """Turn a ``get()`` result into Records (embeddings as float32 arrays; a snapshot's record digests kept)."""
    ids = page["ids"]
    embeddings = page.get("embeddings")
    documents = page.get("documents")
    metadatas = page.get("metadatas")
    digests = page.get(RECORD_DIGESTS)
    matrix = page_matrix(embeddings, len(ids))
    records = []
    for i, rid in enumerate(ids):
        emb = None
        if matrix is not None:
            emb = matrix[i]
        elif embeddings is not None and len(embeddings) > i and embeddings[i] is not None:
            emb = np.asarray(embeddings[i], dtype=np.float32)
        records.append(
            Record(
                id=rid,
                embedding=emb,
                document=documents[i] if documents is not None else None,
                metadata=dict(metadatas[i]) if metadatas is not None and metadatas[i] is not None else None,
                source_collection=collection_name,
                source_digest=digests[i] if digests is not None else None,
            )
        )
    return records
