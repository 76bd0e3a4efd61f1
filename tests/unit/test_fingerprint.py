"""The source fingerprint the drift check compares: any add, delete or change of a record
changes it; the order records are read in does not."""
from __future__ import annotations

import numpy as np

from chroma_runbook.io.fingerprint import collection_fingerprint, drift
from chroma_runbook.io.records import Record


def recs(n: int = 5) -> list[Record]:
    return [Record(f"r{i}", np.full(4, i, dtype=np.float32), f"doc {i}", {"k": i}) for i in range(n)]


def fp(per: dict) -> dict:
    return {"collections": per}


def test_every_kind_of_write_changes_the_fingerprint_and_order_does_not():
    base = collection_fingerprint(recs())
    assert collection_fingerprint(list(reversed(recs()))) == base
    assert collection_fingerprint(recs(6))["count"] == 6 and collection_fingerprint(recs(6)) != base
    for change in ("document", "metadata", "embedding"):
        changed = recs()
        if change == "document":
            changed[2].document = "edited"
        elif change == "metadata":
            changed[2].metadata = {"k": 2, "extra": True}
        else:
            changed[2].embedding = np.nextafter(changed[2].embedding, np.inf)
        assert collection_fingerprint(changed) != base, change
        assert collection_fingerprint(changed)["count"] == base["count"]


def test_drift_names_created_dropped_and_written_collections():
    a, b = collection_fingerprint(recs()), collection_fingerprint(recs(4))
    before = fp({"kept": a, "written": a, "dropped": a})
    after = fp({"kept": a, "written": b, "created": a})
    assert [(d["collection"], d["what"]) for d in drift(before, after)] == [
        ("created", "created"), ("dropped", "dropped"), ("written", "written")]
    assert drift(before, before) == []
