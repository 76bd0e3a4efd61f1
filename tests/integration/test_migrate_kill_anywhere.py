"""SIGKILL at many instants of one run (start-up, export, target creation, import, verify),
resuming each time with the same run_id: the target ends exactly as an uninterrupted run
leaves it. The engine runs in a child process so it can be killed like the module."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from migrate_play import REPO, snapshot

RUN = """
import json, sys
sys.path.insert(0, {mu!r})
from chroma_runbook.migrate.migration import run_migration
from chroma_runbook.migrate.migration_options import MigrationOptions
opts = json.loads(sys.argv[1])
result = run_migration(MigrationOptions(**opts))
print(json.dumps({{"imported": result["imported"], "passed": result["verification"]["passed"] if result.get("verification") else None,
                   "already": result.get("already_completed", False)}}))
"""


def fill(client) -> None:
    rng = np.random.default_rng(11)
    for name, space, n in (("kill_a", "l2", 500), ("kill_b", "cosine", 300), ("kill_c", "ip", 1)):
        col = client.create_collection(name, configuration={"hnsw": {"space": space}}, embedding_function=None)
        emb = rng.standard_normal((n, 32)).astype(np.float32)
        if name == "kill_b":
            emb[7] = 0  # one reject
        col.add(ids=[f"{name} {i}/x" for i in range(n)], embeddings=emb,
                documents=[f"doc ü {i}" if i % 3 else None for i in range(n)],
                metadatas=[{"i": i, "name": name} for i in range(n)])


def start(opts: dict) -> subprocess.Popen:
    code = RUN.format(mu=str(REPO / "module_utils"))
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(opts)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_at_random_instants_then_resume_equals_reference(chroma_factory, tmp_path: Path) -> None:
    source, target, reference = chroma_factory("source"), chroma_factory("target"), chroma_factory("reference")
    fill(source.client())
    base = {"source": source.connection, "batch_size": 20, "run_id": "chaos"}
    ref = start(dict(base, target=reference.connection, checkpoint_dir=str(tmp_path / "ck-ref")))
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    assert json.loads(out)["imported"] == 800

    opts = dict(base, target=target.connection, checkpoint_dir=str(tmp_path / "ck"))
    rng = random.Random(5)
    phases_killed = []
    ckpt = tmp_path / "ck" / "chaos.checkpoint.json"

    def state() -> dict:
        try:
            return json.loads(ckpt.read_text())
        except (OSError, ValueError):
            return {}

    # Kill points: each waits for a moment of the run, then a random few milliseconds more.
    progress = {"batch": -1}
    points = [
        lambda s: s.get("phase") == "export",
        lambda s: s.get("phase") in ("validated", "import"),
        lambda s: s.get("phase") == "import",
        lambda s: s.get("last_batch_index", -1) >= progress["batch"] + 1,
        lambda s: s.get("last_batch_index", -1) >= progress["batch"] + 3,
        lambda s: s.get("last_batch_index", -1) >= progress["batch"] + 2,
        lambda s: s.get("last_batch_index", -1) >= progress["batch"] + 5,
        lambda s: s.get("phase") == "verify",
    ]
    for point in points:
        progress["batch"] = state().get("last_batch_index", -1)
        proc = start(opts)
        deadline = time.monotonic() + 120
        while proc.poll() is None and not point(state()) and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        phases_killed.append((state().get("phase"), state().get("last_batch_index")))
    final = start(opts)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    summary = json.loads(out)
    assert summary["imported"] == 800 and (summary["passed"] or summary["already"])
    assert len(phases_killed) >= 5, phases_killed
    got, want = snapshot(target.client()), snapshot(reference.client())
    assert got.keys() == want.keys()
    for name in want:
        assert got[name]["metadata"] == want[name]["metadata"] and got[name]["hnsw"] == want[name]["hnsw"]
        assert got[name]["rows"].keys() == want[name]["rows"].keys(), (name, phases_killed)
        for rid, (doc, meta, emb) in want[name]["rows"].items():
            gdoc, gmeta, gemb = got[name]["rows"][rid]
            assert (gdoc, gmeta) == (doc, meta)
            assert np.allclose(np.frombuffer(gemb, np.float32), np.frombuffer(emb, np.float32), rtol=0, atol=1e-6)
    state = json.loads(ckpt.read_text())
    assert state["phase"] == "completed" and state["attempts"] >= 2
    assert sorted(state["created_collections"]) == ["kill_a", "kill_b", "kill_c"]
    print("killed at", phases_killed)
