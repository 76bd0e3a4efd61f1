"""The rollback's source repair (chroma_restore mode=repair) never loses a write made after the snapshot.

One real Chroma server: a snapshot is taken, the server is changed, the repair runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from chroma_runbook.snapshot.snapshot import take_snapshot
from chroma_runbook.snapshot.source_repair import repair_source

DIM = 8


def seed(client) -> None:
    for name in ("alpha", "beta", "gamma"):
        col = client.create_collection(name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        ids = [f"{name}-{i}" for i in range(40)]
        col.add(ids=ids, embeddings=np.random.default_rng(len(name)).random((40, DIM)).astype(np.float32) + 0.1,
                documents=[f"doc {i}" for i in ids], metadatas=[{"n": i} for i in range(40)])


def test_repair_adds_back_lost_ids_leaves_newer_writes_and_swaps_whole_restores(chroma_factory, tmp_path: Path) -> None:
    server = chroma_factory("source")
    client = server.client()
    seed(client)
    snap = tmp_path / "snap"
    take_snapshot(client, snap)
    ids_before = {c.name: str(c.id) for c in client.list_collections()}

    client.get_collection("alpha").delete(ids=["alpha-3", "alpha-7"])  # lost records
    client.get_collection("beta").add(ids=["beta-new"], embeddings=[[0.5] * DIM], documents=["written later"])
    client.delete_collection("gamma")  # gone

    planned = repair_source(client, snap, check_mode=True)
    assert planned.as_dict()["collections"]["alpha"]["action"] == "add_missing"
    assert client.get_collection("alpha").count() == 38, "check mode wrote"

    done = repair_source(client, snap, batch_size=16).as_dict()
    assert done["checked"] and done["ok"] is False and done["left_alone"] == ["beta"], done
    assert done["added_back"] == {"alpha": 2} and done["restored"] == ["gamma"], done
    assert "the source changed after the snapshot (1 ids not in it)" in done["summary"], done["summary"]
    live = {c.name: c for c in client.list_collections()}
    assert str(live["alpha"].id) == ids_before["alpha"] and live["alpha"].count() == 40
    assert str(live["beta"].id) == ids_before["beta"] and "beta-new" in live["beta"].get(ids=["beta-new"])["ids"]
    assert live["gamma"].count() == 40 and not [n for n in live if n.startswith("restore-")]

    forced = repair_source(client, snap, names=["beta"], restore_source=True).as_dict()
    kept = forced["collections"]["beta"]["kept_as"]
    live = {c.name: c for c in client.list_collections()}
    assert forced["restored"] == ["beta"] and kept in live, forced
    assert live["beta"].count() == 40 and live["beta"].get(ids=["beta-new"])["ids"] == []
    assert str(live[kept].id) == ids_before["beta"] and live[kept].get(ids=["beta-new"])["ids"] == ["beta-new"]


def test_an_unusable_snapshot_is_reported_not_raised(chroma_factory, tmp_path: Path) -> None:
    client = chroma_factory("source").client()
    seed(client)
    snap = tmp_path / "snap"
    take_snapshot(client, snap)
    (snap / "manifest.json").write_text((snap / "manifest.json").read_text() + " ")
    done = repair_source(client, snap).as_dict()
    assert done["checked"] is False and done["ok"] is None and "checksum" in done["problem"], done
