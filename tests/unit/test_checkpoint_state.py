"""The checkpoint after the split of Migration (issue 11 point 3): CheckpointState in checkpoint.py,
typed state constants (run/states.py), same JSON on disk, and checkpoints written before still load."""
from __future__ import annotations

import json
from pathlib import Path

from chroma_runbook.migrate.checkpoint import CHECKPOINT_VERSION, CheckpointState, checkpoint_path, load
from chroma_runbook.migrate.import_strategy import DirectImport, StagedImport
from chroma_runbook.migrate.migration import Migration
from chroma_runbook.migrate.migration_options import MigrationOptions
from chroma_runbook.run import run_target
from chroma_runbook.run.states import Action, Existing, ImportMode, Phase, TargetState

# A checkpoint as chroma_migrate wrote it before the split (a completed staged run with a
# pre-copy; two targets, one created, one replaced), byte for byte the format of that version.
OLD_CHECKPOINT = """{
 "checkpoint_version": 1,
 "run_id": "20260131T120000Z",
 "fingerprint": "3f1c0e",
 "fingerprint_parts": {"source": "a", "target": "b"},
 "started_at": "2026-01-31T12:00:00Z",
 "phase": "completed",
 "import_mode": "staged",
 "total_chunks": 7, "processed_chunks": 7, "successful_chunks": 6, "failed_chunks": 1, "valid_chunks": 6,
 "last_batch_index": 1, "acked_beyond": [], "total_batches": 2,
 "errors": [{"ts": "2026-01-31T12:00:01Z", "phase": "validate", "message": "only 1 of 2 records are valid"}],
 "source_counts": {"docs": 4, "notes": 3}, "spool_complete": true,
 "targets": {
  "docs": {"expected": 3, "sources": ["docs"], "space": "cosine", "batches_total": 1, "imported": 3,
           "batches_done": 1, "state": "created", "id": "id-docs"},
  "notes": {"expected": 3, "sources": ["notes"], "space": "l2", "batches_total": 1, "imported": 3,
            "batches_done": 1, "state": "replaced", "id": "id-notes", "old_id": "id-old", "replaced_count": 2}
 },
 "created_collections": ["docs", "notes"], "replaced_collections": ["notes"], "merged_collections": [],
 "adopted_collections": [], "attempts": 2,
 "paths": {"rejects": "/r", "log": "/l", "spool": "/s"},
 "precopy": {"read": 7}, "delta": {"applied": true},
 "completed_at": "2026-01-31T12:00:09Z", "updated_at": "2026-01-31T12:00:09Z", "pid": 1, "host": "h"
}"""

# every key CheckpointState.fresh writes (the format readers rely on: progress.yml, run_target, the rollback)
FRESH_KEYS = {"checkpoint_version", "run_id", "fingerprint", "fingerprint_parts", "started_at", "phase",
              "import_mode", "total_chunks", "processed_chunks", "successful_chunks", "failed_chunks",
              "valid_chunks", "last_batch_index", "acked_beyond", "total_batches", "errors", "source_counts",
              "spool_complete", "targets", "created_collections", "replaced_collections", "merged_collections",
              "adopted_collections", "attempts", "paths"}


def _options(tmp_path: Path, **extra: object) -> MigrationOptions:
    return MigrationOptions(source={"url": "http://127.0.0.1:8"}, target={"url": "http://127.0.0.1:9"},
                            run_id="20260131T120000Z", checkpoint_dir=str(tmp_path / "ckpt"), **extra)


def test_the_constants_are_the_strings_checkpoints_hold() -> None:
    assert (Phase.EXPORT, Phase.VALIDATED, Phase.IMPORT, Phase.PROMOTE, Phase.VERIFY, Phase.COMPLETED,
            Phase.PRECOPY, Phase.PRECOPIED, Phase.DELTA, Phase.VALIDATE) == (
        "export", "validated", "import", "promote", "verify", "completed", "precopy", "precopied", "delta", "validate")
    assert (TargetState.STAGING, TargetState.PROMOTING, TargetState.CREATING, TargetState.CREATED,
            TargetState.REPLACING, TargetState.REPLACED, TargetState.MERGED, TargetState.ADOPTED) == (
        "staging", "promoting", "creating", "created", "replacing", "replaced", "merged", "adopted")
    assert (ImportMode.DIRECT, ImportMode.STAGED) == ("direct", "staged")
    assert Existing.ALL == ("fail", "replace", "merge")
    assert (Action.CREATE, Action.REPLACE, Action.MERGE, Action.ADOPT, Action.OURS) == (
        "create", "replace", "merge", "adopt", "ours")
    assert all(type(v) is str for v in (Phase.COMPLETED, TargetState.CREATED, ImportMode.STAGED, Action.OURS))


def test_a_checkpoint_written_before_the_split_loads_and_saves_unchanged(tmp_path: Path) -> None:
    path = checkpoint_path(str(tmp_path), "20260131T120000Z")
    Path(path).write_text(OLD_CHECKPOINT)
    data = load(path)
    assert data is not None and data["checkpoint_version"] == CHECKPOINT_VERSION
    state = CheckpointState(path, data, persist=True)
    assert state.phase == Phase.COMPLETED and data["import_mode"] == ImportMode.STAGED
    assert [t["state"] for t in data["targets"].values()] == list(TargetState.OWN)
    state.list_collection("docs", "created_collections")  # already listed: once only
    state.save()
    again = json.loads(Path(path).read_text())
    before = json.loads(OLD_CHECKPOINT)
    assert {k: v for k, v in again.items() if k not in ("updated_at", "pid", "host")} == \
        {k: v for k, v in before.items() if k not in ("updated_at", "pid", "host")}


def test_the_rollback_reads_an_old_checkpoint_as_before(tmp_path: Path) -> None:
    run_dir = tmp_path / "20260131T120000Z"
    (run_dir / "checkpoint").mkdir(parents=True)
    (run_dir / "checkpoint" / "20260131T120000Z.checkpoint.json").write_text(OLD_CHECKPOINT)
    records = run_target.read_run(run_dir, "20260131T120000Z")
    assert records.phase == Phase.COMPLETED
    assert records.created == {"docs": "id-docs", "notes": "id-notes"}
    assert records.expected == {"docs": 3, "notes": 3}


def test_a_fresh_checkpoint_keeps_the_format(tmp_path: Path) -> None:
    opts = _options(tmp_path).validate()
    path = checkpoint_path(opts.checkpoint_dir, str(opts.run_id))
    Path(opts.checkpoint_dir).mkdir(parents=True)
    state = CheckpointState.fresh(opts, path, persist=True)
    state.save(phase=Phase.VALIDATED)
    state.target("docs").update(state=TargetState.STAGING)
    state.list_collection("docs", "created_collections", "replaced_collections")
    state.error(Phase.VALIDATE, "only 1 of 2 records are valid", collection="docs", batch_index=3)
    on_disk = json.loads(Path(path).read_text())
    assert FRESH_KEYS <= set(on_disk)
    assert on_disk["phase"] == "validated" and on_disk["import_mode"] == "staged"
    assert on_disk["targets"] == {"docs": {"state": "staging"}}
    assert on_disk["created_collections"] == ["docs"] and on_disk["replaced_collections"] == ["docs"]
    assert on_disk["errors"][-1]["phase"] == "validate" and on_disk["errors"][-1]["batch_index"] == 3


def test_the_import_mode_picks_the_strategy_in_one_place(tmp_path: Path) -> None:
    assert type(Migration(_options(tmp_path)).strategy) is StagedImport
    assert type(Migration(_options(tmp_path, existing="merge")).strategy) is DirectImport
    assert type(Migration(_options(tmp_path, staging=False)).strategy) is DirectImport
    assert StagedImport.mode == ImportMode.STAGED and DirectImport.mode == ImportMode.DIRECT
