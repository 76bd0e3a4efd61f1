"""The staged import: batches go out while validation still runs, into staging collections
that take their target names only at the end; merge and staging=false validate first;
names are checked before any write; replace swaps the old collection at the very end."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chroma_runbook.migrate.migration import MigrationError, run_migration
from chroma_runbook.migrate.migration_options import MigrationOptions
from chroma_runbook.migrate.staging import staging_prefix
from migrate_play import snapshot

N, DIM = 3000, 32


def fill(client: Any) -> None:
    rng = np.random.default_rng(21)
    for name, space in (("stage_a", "cosine"), ("stage_b", "l2")):
        col = client.create_collection(name, configuration={"hnsw": {"space": space, "max_neighbors": 12}},
                                       metadata={"team": name}, embedding_function=None)
        for start in range(0, N, 1000):
            col.add(ids=[f"{name}-{i}" for i in range(start, start + 1000)],
                    embeddings=rng.standard_normal((1000, DIM)).astype(np.float32),
                    documents=[f"doc {i}" for i in range(start, start + 1000)],
                    metadatas=[{"i": i} for i in range(start, start + 1000)])


def options(source: Any, target: Any, ck: Path, **extra: Any) -> MigrationOptions:
    # small pages make the validation pass long enough that batches are surely sent during it
    base = dict(source=source.connection, target=target.connection, checkpoint_dir=str(ck), run_id="staged",
                batch_size=50, page_size=25)
    return MigrationOptions(**{**base, **extra})


def events(result_or_path: Any) -> list[dict[str, Any]]:
    path = result_or_path["log_path"] if isinstance(result_or_path, dict) else result_or_path
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_batches_go_out_during_validation_and_only_target_names_remain(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    result = run_migration(options(source, target, tmp_path / "ck"))
    log = events(result)
    names = [e["event"] for e in log]
    validated = names.index("validated")
    acked_before = [e for e in log[:validated] if e["event"] == "batch"]
    assert len(acked_before) >= 5, "no batch was acknowledged while validation ran"
    staged = {e["collection"]: e["staging"] for e in log if e["event"] == "staging_created"}
    prefix = staging_prefix("staged")
    assert staged == {"stage_a": prefix + "stage_a", "stage_b": prefix + "stage_b"}
    assert all(e["collection"] in staged for e in acked_before)
    assert result["phases"]["import"]["alongside_validation"] is True
    # the staging collections became the targets: same ids, nothing named staging-* left
    assert sorted(c.name for c in target.client().list_collections()) == ["stage_a", "stage_b"]
    got, want = snapshot(target.client()), snapshot(source.client())
    for name in want:
        assert got[name]["metadata"] == want[name]["metadata"] and got[name]["hnsw"] == want[name]["hnsw"]
        assert got[name]["rows"].keys() == want[name]["rows"].keys()
    state = json.loads(Path(result["checkpoint_path"]).read_text())
    assert state["import_mode"] == "staged"
    for name in ("stage_a", "stage_b"):
        assert state["targets"][name]["state"] == "created"
        assert state["targets"][name]["id"] == str(target.client().get_collection(name).id)
        assert "staging_id" not in state["targets"][name]


@pytest.mark.parametrize("extra", [{"existing": "merge"}, {"staging": False}], ids=["merge", "staging-false"])
def test_merge_and_staging_false_validate_before_any_write(chroma_pair, tmp_path: Path, extra: dict) -> None:
    source, target = chroma_pair
    fill(source.client())
    result = run_migration(options(source, target, tmp_path / "ck", **extra))
    log = events(result)
    names = [e["event"] for e in log]
    assert "staging_created" not in names
    first_batch = names.index("batch")
    assert names.index("validated") < first_batch and names.index("target_ready") < first_batch
    assert result["phases"]["import"]["alongside_validation"] is False
    assert json.loads(Path(result["checkpoint_path"]).read_text())["import_mode"] == "direct"
    assert sorted(c.name for c in target.client().list_collections()) == ["stage_a", "stage_b"]


def test_a_taken_target_name_fails_before_any_write(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    taken = target.client().create_collection("stage_b", embedding_function=None)
    taken.add(ids=["theirs"], embeddings=[[0.5] * DIM], documents=["not ours"])
    with pytest.raises(MigrationError) as err:
        run_migration(options(source, target, tmp_path / "ck"))
    assert "stage_b (1 records this run did not write)" in str(err.value)
    assert [c.name for c in target.client().list_collections()] == ["stage_b"]
    assert taken.get(include=["documents"])["documents"] == ["not ours"]
    assert "staging_created" not in [e["event"] for e in events(tmp_path / "ck" / "staged.log.jsonl")]


def test_resume_refuses_to_switch_between_staged_and_direct(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    target.client().create_collection("stage_a", embedding_function=None).add(
        ids=["x"], embeddings=[[1.0] * DIM])  # makes the first, staged attempt stop early
    with pytest.raises(MigrationError):
        run_migration(options(source, target, tmp_path / "ck"))
    with pytest.raises(MigrationError) as err:
        run_migration(options(source, target, tmp_path / "ck", staging=False))
    assert "written by a staged import and this attempt would be direct" in str(err.value)


def test_replace_swaps_the_old_collection_only_at_the_end(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    old = target.client().create_collection("stage_a", configuration={"hnsw": {"space": "cosine"}},
                                            embedding_function=None)
    old.add(ids=["old-1", "old-2"], embeddings=[[1.0] * DIM, [0.5] * DIM])
    result = run_migration(options(source, target, tmp_path / "ck", existing="replace"))
    log = events(result)
    names = [e["event"] for e in log]
    promoted = names.index("promoted")
    assert names.index("validated") < promoted and max(i for i, n in enumerate(names) if n == "batch") < promoted
    assert result["replaced_collections"] == ["stage_a"]
    col = target.client().get_collection("stage_a")
    assert col.count() == N and col.get(ids=["old-1"])["ids"] == []
    assert sorted(c.name for c in target.client().list_collections()) == ["stage_a", "stage_b"]


def test_a_crash_between_rename_and_checkpoint_is_finished_by_the_next_attempt(chroma_pair, tmp_path: Path) -> None:
    """The checkpoint still says "promoting" although the rename happened (killed in between):
    the next attempt recognises its staging id under the target name and only finishes the books."""
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    first = run_migration(options(source, target, ck, keep_spool=True))
    ckpt = Path(first["checkpoint_path"])
    state = json.loads(ckpt.read_text())
    before = snapshot(target.client())
    for name, tstate in state["targets"].items():  # as it was on disk just before the rename's save
        tstate.update(state="promoting", promote_as="created", staging=staging_name_of(name),
                      staging_id=tstate.pop("id"))
    state.update(phase="promote", result=None, created_collections=[])
    ckpt.write_text(json.dumps(state))
    second = run_migration(options(source, target, ck, keep_spool=True))
    assert second["verification"]["passed"] is True and second["attempts"] == 2
    assert second["phases"]["import"]["records"] == 0 and second["phases"]["export"]["reused_spool"] is True
    after = json.loads(ckpt.read_text())
    for name in ("stage_a", "stage_b"):
        assert after["targets"][name]["state"] == "created"
        assert after["targets"][name]["id"] == str(target.client().get_collection(name).id)
    assert sorted(after["created_collections"]) == ["stage_a", "stage_b"]
    assert snapshot(target.client()) == before


def staging_name_of(target: str) -> str:
    return staging_prefix("staged") + target


def test_a_name_taken_by_record_routing_drops_the_staging_and_a_resume_sends_everything(
        chroma_pair, tmp_path: Path) -> None:
    """Record-level routing names its target only once records are read: the check runs after the
    pass, with batches already staged. They are dropped and forgotten, so the resume (after the
    operator freed the name) sends them all again and the counts are exact."""
    source, target = chroma_pair
    fill(source.client())
    routing = [{"name": "odd", "target": "odd_docs",
                "match": {"collection": "stage_a", "document_regex": "[13579]$"}}]
    taken = target.client().create_collection("odd_docs", configuration={"hnsw": {"space": "cosine"}},
                                              embedding_function=None)
    taken.add(ids=["theirs"], embeddings=[[0.5] * DIM], documents=["not ours"])
    with pytest.raises(MigrationError) as err:
        run_migration(options(source, target, tmp_path / "ck", routing=routing))
    message = str(err.value)
    assert "odd_docs (1 records this run did not write)" in message
    staged = [e for e in events(tmp_path / "ck" / "staged.log.jsonl") if e["event"] == "staging_created"]
    assert staged and all(e["staging"] in message for e in staged), message
    assert [c.name for c in target.client().list_collections()] == ["odd_docs"]
    assert taken.get(include=["documents"])["documents"] == ["not ours"]
    state = json.loads((tmp_path / "ck" / "staged.checkpoint.json").read_text())
    assert state["last_batch_index"] == -1 and state["acked_beyond"] == [] and state["successful_chunks"] == 0

    target.client().delete_collection("odd_docs")
    result = run_migration(options(source, target, tmp_path / "ck", routing=routing))
    assert result["verification"]["passed"] is True and result["attempts"] == 2
    assert result["phases"]["import"]["skipped_batches"] == 0
    counts = {c.name: c.count() for c in target.client().list_collections()}
    assert counts == {"odd_docs": N // 2, "stage_a": N // 2, "stage_b": N}
