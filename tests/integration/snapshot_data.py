"""Small, deterministic collections for snapshot/restore/validate tests (all three spaces)."""
from __future__ import annotations

from typing import Any

import numpy as np

DIM = 32

SPECS: list[dict[str, Any]] = [
    {"name": "snap_cosine", "n": 700, "configuration": {"hnsw": {"space": "cosine", "ef_construction": 200,
                                                                  "max_neighbors": 32}},
     "metadata": {"owner": "openwebui", "description": "cosine docs"}},
    {"name": "snap_l2", "n": 450, "configuration": None,
     "metadata": {"owner": "openwebui", "hnsw:space": "l2"}},
    {"name": "snap_ip", "n": 300, "configuration": {"hnsw": {"space": "ip"}}, "metadata": {"owner": "careers"}},
]


def vectors(name: str, n: int, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(sum(map(ord, name)))
    return rng.normal(size=(n, dim)).astype(np.float32)


def populate(client: Any, specs: list[dict[str, Any]] = SPECS) -> dict[str, dict[str, Any]]:
    """Create and fill the collections; return what was written per collection."""
    written: dict[str, dict[str, Any]] = {}
    for spec in specs:
        coll = client.create_collection(spec["name"], configuration=spec["configuration"],
                                        metadata=spec["metadata"], embedding_function=None)
        n = spec["n"]
        ids = [f"{spec['name']}-{i:06d}" for i in range(n)]
        vecs = vectors(spec["name"], n)
        docs = [f"document {i} of {spec['name']} with ünïcode ✓" for i in range(n)]
        metas = [{"i": i, "score": i / 7.0, "flag": bool(i % 2), "tag": f"t{i % 5}"} for i in range(n)]
        for start in range(0, n, 250):
            sl = slice(start, start + 250)
            coll.add(ids=ids[sl], embeddings=vecs[sl], documents=docs[sl], metadatas=metas[sl])
        written[spec["name"]] = {"ids": ids, "vectors": vecs, "documents": docs, "metadatas": metas}
    return written


def dump(client: Any) -> dict[str, dict[str, Any]]:
    """Everything a server holds, per collection, sorted by id (embeddings as float32)."""
    out: dict[str, dict[str, Any]] = {}
    for coll in client.list_collections():
        got = coll.get(include=["embeddings", "documents", "metadatas"])
        order = np.argsort(got["ids"])
        out[coll.name] = {
            "ids": [got["ids"][i] for i in order],
            "documents": [got["documents"][i] for i in order],
            "metadatas": [got["metadatas"][i] for i in order],
            "embeddings": np.asarray(got["embeddings"], dtype=np.float32)[order],
            "metadata": dict(coll.metadata or {}),
            "hnsw": dict(coll.configuration_json.get("hnsw") or {}),
        }
    return out
