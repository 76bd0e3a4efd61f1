"""The record shape every engine stage passes along."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

# A metadata value Chroma 1.5 accepts.
MetadataValue = Any  # str | int | float | bool | None (and lists in newer servers)


@dataclass
class Record:
    """One chunk: id, document, metadata and its float32 embedding."""

    id: str
    embedding: Optional[np.ndarray]
    document: Optional[str] = None
    metadata: Optional[dict[str, MetadataValue]] = None
    source_collection: str = ""
    target_collection: str = ""
    issues: list[str] = field(default_factory=list)
    # Digests a stage already had, so the next one does not hash the record again (None: not known).
    # source_digest: io/fingerprint.record_digest of the record as read (a snapshot keeps them);
    # staged_digest: migrate/precopy.record_fingerprint of the record as transformed (the transform memo).
    source_digest: Optional[bytes] = None
    staged_digest: Optional[bytes] = None

    def original(self) -> dict[str, Any]:
        """A JSON-ready copy of the record as read from the source."""
        emb = None if self.embedding is None else [float(x) for x in self.embedding]
        return {
            "id": self.id,
            "source_collection": self.source_collection,
            "document": self.document,
            "metadata": self.metadata,
            "embedding": emb,
        }
