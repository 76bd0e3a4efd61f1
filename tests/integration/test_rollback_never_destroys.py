"""Rollback and recovery never destroy data (issue #10, points 1, 3, 4 and 5).

One lab, real playbooks. Each test starts from an empty target and open writes and
leaves the lab that way:

- a migrate.yml SIGKILLed while its background migration runs, unfreeze.yml, three
  writes through an app, then rollback.yml -e drop_target=true: the writes stay in the
  source, the collection keeps its id, and the run's target collections are dropped
  from its checkpoint alone (the killed playbook recorded no migrate result);
- drop_target never drops a collection the run merged into (its foreign records stay);
- after a rollback that kept the target, the next migrate.yml replaces the rolled-back
  run's untouched copies and says so; a foreign collection still stops the preflight;
- a truncated checkpoint, a corrupt state.json and a manifest failing its checksum do
  not stop rollback.yml: apps back, writes open, a report naming what it could not check;
- writes that reached the target after a cutover (at the proxy, or in the apps' config) are
  found per collection.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from runbook_lab import DB_API, REPO, VENV_BIN, Lab, free_port_base, http, run_playbook

pytestmark = pytest.mark.slow

UP_TO_MIGRATE = "--tags preflight,freeze,snapshot,migrate"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("rollback-safe"), free_port_base(), scale=0.2).up()
    try:
        yield lab
    finally:
        lab.down()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def lock_free(lock: Path) -> bool:
    if not lock.exists():
        return False
    with open(lock, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def ids_of(lab: Lab, base: str, collection: str) -> set[str]:
    coll = lab.collections(base)[collection]
    status, got = http(f"{base}{DB_API}/collections/{coll['id']}/get", method="POST", body={"include": []})
    assert status == 200, got
    return set(got["ids"])


def target_add(lab: Lab, collection: str, ids: list[str]) -> None:
    coll = lab.collections(lab.target)[collection]
    status, body = http(f"{lab.target}{DB_API}/collections/{coll['id']}/add", method="POST",
                        body={"ids": ids, "embeddings": [[0.02] * 768] * len(ids), "documents": ["foreign"] * len(ids)})
    assert status in (200, 201), body


def drop_all_on_target(lab: Lab) -> None:
    for name in lab.collections(lab.target):
        http(f"{lab.target}{DB_API}/collections/{name}", method="DELETE")


def open_writes(lab: Lab, workdir: Path) -> None:
    """After a failed test: lift whatever freeze is left (every run's claim), so the next test starts open."""
    if not writes_open(lab):
        run_playbook(lab, "playbooks/unfreeze.yml", workdir)


def writes_open(lab: Lab) -> bool:
    status, _ = lab.front_door_add("openwebui_docs", "rollback-safe-open-probe")
    if status in (200, 201):
        lab.source_delete("openwebui_docs", "rollback-safe-open-probe")
        return True
    return False


def kill_migrate_while_its_job_runs(lab: Lab, run_id: str, workdir: Path) -> None:
    """migrate.yml as an operator starts it; SIGKILL the playbook (not its background job) mid-import."""
    counts = lab.counts(lab.source)
    extra = workdir / "extra.json"
    workdir.mkdir(parents=True, exist_ok=True)
    extra.write_text(json.dumps({"chroma_lab_dir": str(lab.root), "chroma_lab_port_base": lab.port_base,
                                 "confirm": "yes", "run_id": run_id, "chroma_expected_counts": counts}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    log = open(workdir / "migrate.out", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "-i", str(REPO / "inventory" / "lab.yml"),
                             str(REPO / "migrate.yml"), "-e", f"@{extra}"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    run_dir = lab.runs_dir / run_id
    ckpt = run_dir / "checkpoint" / f"{run_id}.checkpoint.json"
    try:
        wait_for(lambda: bool(read_json(run_dir / "state.json").get("data", {}).get("migrate", {}).get("async_jid"))
                 and read_json(ckpt).get("phase") in ("import", "promote", "verify", "completed"), 600,
                 "the background migration job")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the playbook and its workers; the async job lives in its own session
        proc.wait(timeout=60)
        log.close()
    wait_for(lambda: read_json(ckpt).get("phase") == "completed", 600, "the background job to complete")
    locks = list((lab.runs_dir / "locks").glob("*")) + list((run_dir / "checkpoint").glob("migrate.lock"))
    wait_for(lambda: all(lock_free(lock) for lock in locks), 120, "the background job to release its lock")


def test_rollback_after_a_killed_migrate_and_an_unfreeze_keeps_every_write(lab: Lab, tmp_path: Path) -> None:
    """Points 1 and 4: the issue's reproduction."""
    drop_all_on_target(lab)
    run_id = "r1"
    core_id = lab.collections(lab.source)["openwebui_core"]["id"]
    kill_migrate_while_its_job_runs(lab, run_id, tmp_path / "migrate")
    state = read_json(lab.runs_dir / run_id / "state.json")
    # the role recorded the migrate step's start; the killed playbook never recorded its end or result
    killed = state["steps"]["migrate"]
    assert killed["outcome"] == "running" and killed["ended_at"] is None and "result" not in killed, killed
    assert state["data"]["freeze"]["frozen_at"], state

    unfreeze = run_playbook(lab, "playbooks/unfreeze.yml", tmp_path / "unfreeze")
    assert unfreeze.status == "successful", unfreeze.explain()
    assert read_json(lab.runs_dir / run_id / "state.json")["data"]["freeze"].get("released_at"), "released_at not recorded"
    written = [f"after-unfreeze-{i}" for i in range(3)]
    for rid in written:
        status, body = http(f"{lab.apps['app_chatbot']}/remember", method="POST",
                            body={"collection": "openwebui_core", "id": rid, "text": f"a memory written after the unfreeze {rid}"})
        assert status == 201, body

    created = read_json(lab.runs_dir / run_id / "checkpoint" / f"{run_id}.checkpoint.json")["created_collections"]
    assert created and set(created) <= set(lab.collections(lab.target))
    back = run_playbook(lab, "rollback.yml", tmp_path / "rollback", {"run_id": run_id, "drop_target": True})
    assert back.status == "successful", back.explain()
    assert lab.collections(lab.source)["openwebui_core"]["id"] == core_id, "the source collection was replaced"
    assert set(written) <= ids_of(lab, lab.source, "openwebui_core"), "writes made after the unfreeze were lost"
    assert lab.collections(lab.target) == {}, "drop_target left the run's collections (read from its checkpoint)"
    report = json.loads((lab.runs_dir / run_id / "reports" / "rollback_report.json").read_text())
    assert report["source"]["checked"] is False and "not frozen" in report["source"]["note"], report["source"]
    assert sorted(report["target"]["dropped"]) == sorted(created), report["target"]
    for rid in written:
        lab.source_delete("openwebui_core", rid)


def test_drop_target_never_drops_a_collection_the_run_merged_into(lab: Lab, tmp_path: Path) -> None:
    """Point 4: existing=merge into a pre-existing collection; drop_target keeps it and its foreign records."""
    drop_all_on_target(lab)
    counts = lab.counts(lab.source)
    run_id = "m1"
    first = run_playbook(lab, "migrate.yml", tmp_path / "a", {"confirm": "yes", "run_id": run_id,
                                                              "chroma_expected_counts": counts},
                         cmdline="--tags preflight,freeze,snapshot")
    assert first.status == "successful", first.explain()
    http(f"{lab.target}{DB_API}/collections", method="POST", body={"name": "sergio_corpus",
                                                                   "configuration": {"hnsw": {"space": "cosine"}}})
    foreign = [f"foreign-{i}" for i in range(5)]
    target_add(lab, "sergio_corpus", foreign)
    try:
        merged = run_playbook(lab, "migrate.yml", tmp_path / "b", {"confirm": "yes", "run_id": run_id,
                                                                   "chroma_migrate_existing": "merge", "chroma_precopy": False,
                                                                   "chroma_expected_counts": counts},
                              cmdline="--tags migrate")
        assert merged.status == "successful", merged.explain()
        corpus_id = lab.collections(lab.target)["sergio_corpus"]["id"]
        back = run_playbook(lab, "rollback.yml", tmp_path / "c", {"run_id": run_id, "drop_target": True})
        assert back.status == "successful", back.explain()
        left = lab.collections(lab.target)
        assert list(left) == ["sergio_corpus"] and left["sergio_corpus"]["id"] == corpus_id, left
        assert set(foreign) <= ids_of(lab, lab.target, "sergio_corpus"), "drop_target deleted foreign records"
        assert writes_open(lab)
    finally:
        drop_all_on_target(lab)
        open_writes(lab, tmp_path / "cleanup")


def test_writes_after_a_proxy_cutover_are_found_per_collection_and_copies_kept_are_replaced_later(
        lab: Lab, tmp_path: Path) -> None:
    """Point 3: after chroma_cutover_method=proxy, one record added to one collection and one deleted from
    another (the totals agree) make rollback.yml refuse, naming both. Point 4: the copies the rollback then
    keeps (recorded ids, untouched) are replaced by the next migrate.yml; anything else still stops it."""
    drop_all_on_target(lab)
    counts = lab.counts(lab.source)
    done = run_playbook(lab, "migrate.yml", tmp_path / "a", {"confirm": "yes", "run_id": "p1", "chroma_cutover_method": "proxy",
                                                             "chroma_expected_counts": counts})
    assert done.status == "successful", done.explain()
    kept = lab.collections(lab.target)
    assert lab.collections(lab.front_door).keys() == kept.keys(), "the front door does not lead to the target"
    assert read_json(lab.runs_dir / "p1" / "state.json")["data"]["freeze"].get("released_at"), "proxy cutover: no released_at"
    humor = kept["sergio_humor"]["id"]
    status, victim = http(f"{lab.target}{DB_API}/collections/{humor}/get", method="POST",
                          body={"limit": 1, "include": ["embeddings", "documents", "metadatas"]})
    assert status == 200 and victim["ids"], victim
    status, body = lab.front_door_add("sergio_corpus", "written-after-cutover")
    assert status in (200, 201), body
    http(f"{lab.front_door}{DB_API}/collections/{humor}/delete", method="POST", body={"ids": victim["ids"]})
    refused = run_playbook(lab, "rollback.yml", tmp_path / "b")
    assert refused.status == "failed", refused.explain()
    messages = " ".join(msg for _, msg in refused.failed_tasks)
    assert "REFUSED" in messages and "sergio_corpus" in messages and "(+1)" in messages, refused.failed_tasks
    assert "sergio_humor" in messages and "(-1)" in messages, refused.failed_tasks
    assert lab.collections(lab.front_door).keys() == kept.keys(), "a refused rollback touched the front door"

    # the operator exports the writes (here: takes them back) and rolls back, keeping the target
    corpus = kept["sergio_corpus"]["id"]
    http(f"{lab.target}{DB_API}/collections/{corpus}/delete", method="POST", body={"ids": ["written-after-cutover"]})
    http(f"{lab.target}{DB_API}/collections/{humor}/add", method="POST", body={
        "ids": victim["ids"], "embeddings": victim["embeddings"], "documents": victim["documents"],
        "metadatas": victim["metadatas"]})
    back = run_playbook(lab, "rollback.yml", tmp_path / "c")
    assert back.status == "successful", back.explain()
    assert lab.collections(lab.front_door).keys() == counts.keys() and writes_open(lab)
    try:
        http(f"{lab.target}{DB_API}/collections", method="POST", body={"name": "someone_elses"})
        blocked = run_playbook(lab, "migrate.yml", tmp_path / "d", {"confirm": "yes", "run_id": "p2",
                                                                    "chroma_expected_counts": counts}, cmdline="--tags preflight")
        assert blocked.status == "failed", blocked.explain()
        messages = " ".join(msg for _, msg in blocked.failed_tasks)
        assert "TARGET NOT EMPTY" in messages and "someone_elses" in messages, blocked.failed_tasks
        assert not any(name in messages for name in kept), messages
        assert set(lab.collections(lab.target)) == set(kept) | {"someone_elses"}, "a stopped preflight changed the target"
        http(f"{lab.target}{DB_API}/collections/someone_elses", method="DELETE")

        again = run_playbook(lab, "migrate.yml", tmp_path / "e", {"confirm": "yes", "run_id": "p3",
                                                                  "chroma_expected_counts": counts}, cmdline="--tags preflight")
        assert again.status == "successful", again.explain()
        said = again.stdout
        assert all(f"REPLACED {name} (" in said for name in kept) and "rolled-back run p1" in said, said[-3000:]
        assert lab.collections(lab.target) == {}
    finally:
        drop_all_on_target(lab)


def test_writes_after_an_app_config_cutover_are_found_per_collection(lab: Lab, tmp_path: Path) -> None:
    """Point 3 with the default cutover (each app's config points at the target): +1 in one collection and
    -1 in another keep the totals equal, yet rollback.yml refuses, naming both; once they are taken back
    it restores the apps' config."""
    drop_all_on_target(lab)
    counts = lab.counts(lab.source)
    try:
        done = run_playbook(lab, "migrate.yml", tmp_path / "a", {"confirm": "yes", "run_id": "c1",
                                                                 "chroma_expected_counts": counts})
        assert done.status == "successful", done.explain()
        assert lab.app_health("app_chatbot")["chroma_url"] == lab.target
        migrated = lab.counts(lab.target)
        target_add(lab, "sergio_corpus", ["written-by-an-app"])
        humor = lab.collections(lab.target)["sergio_humor"]["id"]
        status, victim = http(f"{lab.target}{DB_API}/collections/{humor}/get", method="POST",
                              body={"limit": 1, "include": ["embeddings", "documents", "metadatas"]})
        assert status == 200 and victim["ids"], victim
        http(f"{lab.target}{DB_API}/collections/{humor}/delete", method="POST", body={"ids": victim["ids"]})
        changed = lab.counts(lab.target)
        assert sum(changed.values()) == sum(migrated.values()) and changed != migrated, (migrated, changed)

        refused = run_playbook(lab, "rollback.yml", tmp_path / "b")
        assert refused.status == "failed", refused.explain()
        messages = " ".join(msg for _, msg in refused.failed_tasks)
        assert "REFUSED" in messages and "sergio_corpus" in messages and "(+1)" in messages, refused.failed_tasks
        assert "sergio_humor" in messages and "(-1)" in messages, refused.failed_tasks
        assert lab.app_health("app_chatbot")["chroma_url"] == lab.target, "a refused rollback moved the app"

        corpus = lab.collections(lab.target)["sergio_corpus"]["id"]
        http(f"{lab.target}{DB_API}/collections/{corpus}/delete", method="POST", body={"ids": ["written-by-an-app"]})
        http(f"{lab.target}{DB_API}/collections/{humor}/add", method="POST", body={
            "ids": victim["ids"], "embeddings": victim["embeddings"], "documents": victim["documents"],
            "metadatas": victim["metadatas"]})
        back = run_playbook(lab, "rollback.yml", tmp_path / "c")
        assert back.status == "successful", back.explain()
        assert lab.app_health("app_chatbot")["chroma_url"] == lab.front_door and writes_open(lab)
    finally:
        open_writes(lab, tmp_path / "cleanup")
        drop_all_on_target(lab)

def test_a_damaged_run_directory_does_not_block_the_rollback(lab: Lab, tmp_path: Path) -> None:
    """Point 5: truncated checkpoint, corrupt state.json, manifest failing its checksum."""
    drop_all_on_target(lab)
    counts = lab.counts(lab.source)
    run_id = "d1"
    first = run_playbook(lab, "migrate.yml", tmp_path / "a", {"confirm": "yes", "run_id": run_id,
                                                              "chroma_expected_counts": counts}, cmdline=UP_TO_MIGRATE)
    assert first.status == "successful", first.explain()
    assert not writes_open(lab)
    run_dir = lab.runs_dir / run_id
    ckpt = run_dir / "checkpoint" / f"{run_id}.checkpoint.json"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    (run_dir / "state.json").write_text('{"run_id": "d1", "steps": {')
    manifest = run_dir / "snapshot" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"logical"', '"logicaL"', 1))
    try:
        back = run_playbook(lab, "rollback.yml", tmp_path / "b", {"run_id": run_id})
        assert back.status == "successful", back.explain()
        assert writes_open(lab), "the freeze was not lifted"
        for name in lab.apps:
            assert lab.app_health(name)["chroma_url"] == lab.front_door
        report = json.loads((run_dir / "reports" / "rollback_report.json").read_text())
        unchecked = " ".join(report["not_checked"])
        assert "checkpoint" in unchecked and "state file" in unchecked and "checksum" in unchecked, report["not_checked"]
        assert report["source"]["checked"] is False, report["source"]
        assert read_json(run_dir / "state.json")["status"] == "rolled_back"
        assert list(run_dir.glob("state.json.damaged-*")), "the damaged state file was not kept"
        assert lab.counts(lab.source) == counts
    finally:
        drop_all_on_target(lab)
