"""Import errors against real servers: a target that restarts mid-import (transient, retried)
and a batch the target refuses for good (permanent, named)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from chroma_runbook.migrate.migration import MigrationError, run_migration
from chroma_runbook.migrate.migration_options import MigrationOptions
from migrate_play import base_args, run_migrate, snapshot


def fill(client, n: int = 3000, dim: int = 64) -> None:
    rng = np.random.default_rng(3)
    col = client.create_collection("restart_me", configuration={"hnsw": {"space": "l2"}}, embedding_function=None)
    for start in range(0, n, 1000):
        col.add(ids=[f"r{i}" for i in range(start, start + 1000)],
                embeddings=rng.standard_normal((1000, dim)).astype(np.float32),
                documents=[f"doc {i}" for i in range(start, start + 1000)],
                metadatas=[{"i": i} for i in range(start, start + 1000)])


def test_target_restart_mid_import_is_retried_and_ends_exact(chroma_factory, tmp_path: Path) -> None:
    source, target = chroma_factory("source"), chroma_factory("target")
    fill(source.client())
    opts = MigrationOptions(source=source.connection, target=target.connection, checkpoint_dir=str(tmp_path / "ck"),
                            batch_size=20, run_id="restart", max_retries=8, retry_delay=0.5)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = run_migration(opts)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    ckpt = tmp_path / "ck" / "restart.checkpoint.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if json.loads(ckpt.read_text()).get("last_batch_index", -1) >= 5:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    target.stop()  # SIGTERM, waits for exit: requests now get "connection refused"
    time.sleep(1.0)
    target.start()  # same object: the fixture stops the restarted server by its PID
    worker.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result["phases"]["import"]["retries"] >= 1
    assert result["verification"]["passed"] is True and result["imported"] == 3000
    log = [json.loads(line) for line in Path(result["log_path"]).read_text().splitlines()]
    retry = next(e for e in log if e["event"] == "retry")
    assert retry["collection"] == "restart_me" and "batch_index" in retry
    want = snapshot(source.client())["restart_me"]["rows"]
    got = snapshot(target.client())["restart_me"]["rows"]
    assert got == want


def test_permanent_error_names_collection_batch_and_ids(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client(), n=1000, dim=16)
    other = target.client().create_collection("restart_me", configuration={"hnsw": {"space": "l2"}},
                                              embedding_function=None)
    other.add(ids=["existing"], embeddings=np.ones((1, 8), np.float32))  # another dimension
    args = base_args(source.url, target.url, tmp_path / "ck", batch_size=300, existing="merge", max_retries=3,
                     retry_delay=0.1)
    rc, res, out = run_migrate(tmp_path, args)
    assert rc != 0
    assert "import into collection 'restart_me' failed at batch 0 (300 records, ids 'r0'..'r299') after 1 attempt(s)" \
        in res["msg"], res["msg"]
    assert "dimension" in res["msg"]
    assert target.client().get_collection("restart_me").count() == 1
    ckpt = json.loads(Path(res["checkpoint_path"]).read_text())
    assert ckpt["errors"][-1]["phase"] == "import" and "batch 0" in ckpt["errors"][-1]["message"]


def test_engine_refuses_a_changed_option_on_resume(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client(), n=1000, dim=16)
    opts = dict(source=source.connection, target=target.connection, checkpoint_dir=str(tmp_path / "ck"), run_id="same")
    run_migration(MigrationOptions(**opts, batch_size=100))
    try:
        run_migration(MigrationOptions(**opts, batch_size=200))
    except MigrationError as exc:
        assert "changed: batch_size" in str(exc)
    else:
        raise AssertionError("a resume with another batch_size was accepted")
