"""chroma_info (and its engine) against a real `chroma run`: collections, counts, dimension, configuration."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from chroma_runbook.io.connection import ConnectionSpec
from chroma_runbook.io.server_inventory import _read_client, read_inventory
from module_play import run_module


def _load(server) -> None:  # noqa: ANN001 - conftest's ChromaServer
    client = server.client()
    rng = np.random.default_rng(7)
    cos = client.create_collection("docs", metadata={"owner": "t"}, configuration={"hnsw": {"space": "cosine", "ef_construction": 200}})
    cos.add(ids=[f"d{i}" for i in range(30)], embeddings=rng.random((30, 8)).tolist())
    l2 = client.create_collection("pains", configuration={"hnsw": {"space": "l2"}})
    l2.add(ids=[f"p{i}" for i in range(5)], embeddings=rng.random((5, 8)).tolist())
    client.create_collection("empty")


def test_rest_inventory_matches_the_chromadb_client(chroma_factory) -> None:  # noqa: ANN001
    server = chroma_factory("info")
    _load(server)
    inventory = read_inventory(server.connection)
    assert inventory.counts() == {"docs": 30, "empty": 0, "pains": 5}
    assert inventory.total == 35 and inventory.vector_bytes() == 35 * 8 * 4
    docs = next(c for c in inventory.collections if c.name == "docs")
    assert docs.dimension == 8 and docs.metadata == {"owner": "t"}
    assert docs.configuration["hnsw"]["space"] == "cosine" and docs.configuration["hnsw"]["ef_construction"] == 200
    _, via_client = _read_client(ConnectionSpec.from_dict(server.connection), None, True)
    assert {n: (c.count, c.dimension, c.id) for n, c in via_client.items()} == {
        c.name: (c.count, c.dimension, c.id) for c in inventory.collections}
    only = read_inventory(server.connection, names=["pains", "ghost"])
    assert only.counts() == {"ghost": -1, "pains": 5}


def test_module_compares_counts_and_never_changes_anything(chroma_factory, tmp_path: Path) -> None:  # noqa: ANN001
    server = chroma_factory("info-module")
    _load(server)
    rc, result, out = run_module(tmp_path, "chroma_info",
                                 {"server": server.connection, "expected_counts": {"docs": 31, "pains": 5}, "tolerance": 1})
    assert rc == 0, out
    assert result["changed"] is False and result["count_check"]["ok"] is True
    assert result["collections"]["docs"]["dimension"] == 8
    rc, result, out = run_module(tmp_path, "chroma_info",
                                 {"server": server.connection, "expected_counts": {"docs": 40, "gone": 1}}, name="bad")
    assert rc == 0, out
    check = result["count_check"]
    assert not check["ok"] and check["missing"] == ["gone"] and "docs: 30 records, expected 40" in check["summary"]
    rc, result, out = run_module(tmp_path, "chroma_info", {"server": {"url": "ftp://nope"}}, name="badurl")
    assert rc != 0 and "server.url must look like" in result["msg"]
