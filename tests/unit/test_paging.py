"""page_to_records: a page's embeddings converted at once when they form a matrix, row by row otherwise."""
from __future__ import annotations

import numpy as np

from chroma_runbook.io.paging import RECORD_DIGESTS, page_matrix, page_to_records


def test_a_float64_matrix_page_gives_the_same_float32_records_as_row_by_row() -> None:
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(4, 8))  # chromadb 1.x's client gives float64
    page = {"ids": ["a", "b", "c", "d"], "embeddings": matrix, "documents": ["x", None, "z", "w"],
            "metadatas": [{"k": 1}, None, {"k": 1.0}, {}]}
    records = page_to_records(page, "coll")
    assert page_matrix(matrix, 4) is not None
    for row, record in enumerate(records):
        assert record.embedding.dtype == np.float32
        assert record.embedding.tobytes() == np.asarray(matrix[row], dtype=np.float32).tobytes()
    assert [r.document for r in records] == ["x", None, "z", "w"]
    assert records[1].metadata is None and records[2].metadata == {"k": 1.0}
    assert all(r.source_digest is None for r in records)


def test_lists_with_a_missing_embedding_stay_row_by_row_and_digests_are_carried() -> None:
    page = {"ids": ["a", "b"], "embeddings": [[0.5, 0.25], None], "documents": None, "metadatas": None,
            RECORD_DIGESTS: [b"\1" * 32, b"\2" * 32]}
    records = page_to_records(page, "coll")
    assert page_matrix(page["embeddings"], 2) is None
    assert records[0].embedding.tolist() == [0.5, 0.25] and records[1].embedding is None
    assert [r.source_digest for r in records] == [b"\1" * 32, b"\2" * 32]


def test_an_object_array_or_a_short_matrix_is_not_taken_as_the_page_matrix() -> None:
    objects = np.empty((2, 2), dtype=object)
    assert page_matrix(objects, 2) is None
    assert page_matrix(np.zeros((1, 3)), 2) is None
