"""chroma_migrate with embedded (persist directory) connections on both sides."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from migrate_play import run_migrate

MAKE_SOURCE = """
import sys, numpy as np, chromadb
from chromadb.config import Settings
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.create_collection("embedded_src", configuration={"hnsw": {"space": "ip"}}, embedding_function=None)
col.add(ids=[f"e/{i}" for i in range(120)], embeddings=np.arange(120 * 4, dtype=np.float32).reshape(120, 4) + 1,
        documents=[f"doc {i}" for i in range(120)], metadatas=[{"n": i, "odd": i % 2 == 1} for i in range(120)])
"""

READ = """
import sys, json, chromadb
from chromadb.config import Settings
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.get_collection("embedded_src")
got = col.get(include=["embeddings", "documents", "metadatas"])
print(json.dumps({"count": col.count(), "space": col.configuration_json["hnsw"]["space"],
                  "first": [got["ids"][0], got["documents"][0], got["metadatas"][0], [float(x) for x in got["embeddings"][0]]]}))
"""


def test_path_to_path(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    subprocess.run([sys.executable, "-c", MAKE_SOURCE, str(src)], check=True)
    args = {"source": {"path": str(src)}, "target": {"path": str(dst)}, "checkpoint_dir": str(tmp_path / "ck")}
    rc, res, out = run_migrate(tmp_path, args)
    assert rc == 0, out
    assert res["imported"] == 120 and res["verification"]["passed"] is True
    before = json.loads(subprocess.run([sys.executable, "-c", READ, str(src)], check=True, capture_output=True,
                                       text=True).stdout)
    after = json.loads(subprocess.run([sys.executable, "-c", READ, str(dst)], check=True, capture_output=True,
                                      text=True).stdout)
    assert after == before and after["count"] == 120 and after["space"] == "ip"
