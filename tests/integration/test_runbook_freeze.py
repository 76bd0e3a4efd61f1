"""The write freeze at the front door (freeze.yml / unfreeze.yml) and the dry run (migrate.yml --check).

Canary writes through the front door must be refused with a JSON 503 while reads,
including the reads Chroma serves as POST (get, query), still work. Both
playbooks are idempotent. The dry run freezes nothing and writes nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from runbook_lab import DB_API, Lab, free_port_base, http, run_playbook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("runbook-freeze"), free_port_base(), scale=0.2).up()
    try:
        yield lab
    finally:
        lab.down()


def test_dry_run_freezes_nothing_and_writes_nothing(lab: Lab, tmp_path: Path) -> None:
    source_before = lab.counts(lab.source)
    configs = {name: lab.app_config(name) for name in lab.apps}
    run = run_playbook(lab, "migrate.yml", tmp_path, {"chroma_expected_counts": source_before}, cmdline="--check --diff")
    assert run.status == "successful", run.explain()
    dry = [r.get("msg", "") for r in run.task_results("Report") if "DRY RUN" in str(r.get("msg", ""))]
    assert dry and "nothing was written" in dry[0], dry
    assert lab.counts(lab.target) == {}
    # no run directory: the dry run writes only its measured throughput (for the window's estimate)
    assert not lab.runs_dir.exists() or [p.name for p in lab.runs_dir.iterdir()] == ["throughput.json"]
    assert {name: lab.app_config(name) for name in lab.apps} == configs
    assert not list((lab.root / "nginx" / "server.d").glob("*.conf"))
    status, body = lab.front_door_add("openwebui_core", "runbook-test-dry")
    assert status in (200, 201), body
    lab.source_delete("openwebui_core", "runbook-test-dry")


def test_freeze_is_proven_by_canaries(lab: Lab, tmp_path: Path) -> None:
    run = run_playbook(lab, "playbooks/freeze.yml", tmp_path / "freeze")
    assert run.status == "successful", run.explain()
    assert run.task_results("Write canary - create a collection (must be refused)")[0]["status"] == 503
    assert run.task_results("Write canary - add a record to an existing collection (must be refused)")[0]["status"] == 503

    # the same, from outside: writes get the JSON 503, reads pass (GET and the POST reads)
    status, refused = lab.front_door_add("openwebui_docs", "runbook-test-frozen")
    assert status == 503 and refused["error"] == "WritesFrozen" and "frozen for maintenance" in refused["message"]
    status, refused = http(f"{lab.front_door}{DB_API}/collections", method="POST", body={"name": "runbook_test_new"})
    assert status == 503, refused
    docs = lab.collections(lab.front_door)["openwebui_docs"]
    status, got = http(f"{lab.front_door}{DB_API}/collections/{docs['id']}/get", method="POST",
                       body={"limit": 1, "include": ["embeddings"]})
    assert status == 200 and len(got["ids"]) == 1, got
    status, found = http(f"{lab.front_door}{DB_API}/collections/{docs['id']}/query", method="POST",
                         body={"query_embeddings": got["embeddings"], "n_results": 2, "include": ["distances"]})
    assert status == 200 and found["ids"][0][0] == got["ids"][0], found
    status, deleted = http(f"{lab.front_door}{DB_API}/collections/openwebui_docs", method="DELETE")
    assert status == 503, deleted
    assert "runbook_test_new" not in lab.collections(lab.source)

    again = run_playbook(lab, "playbooks/freeze.yml", tmp_path / "freeze-again")
    assert again.status == "successful", again.explain()
    assert again.total("changed") == 0, again.changed_tasks


def test_unfreeze_opens_writes_again(lab: Lab, tmp_path: Path) -> None:
    run = run_playbook(lab, "playbooks/unfreeze.yml", tmp_path / "unfreeze")
    assert run.status == "successful", run.explain()
    status, body = lab.front_door_add("openwebui_docs", "runbook-test-unfrozen")
    assert status in (200, 201), body
    lab.source_delete("openwebui_docs", "runbook-test-unfrozen")
    again = run_playbook(lab, "playbooks/unfreeze.yml", tmp_path / "unfreeze-again")
    assert again.status == "successful", again.explain()
    assert again.total("changed") == 0, again.changed_tasks
