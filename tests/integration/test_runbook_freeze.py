"""The write freeze at the front door (freeze.yml / unfreeze.yml) and the dry run (migrate.yml --check).

Canary writes through the front door must be refused with a JSON 503 while reads,
including the reads Chroma serves as POST (get, query), still work. Both
playbooks are idempotent. The dry run freezes nothing and writes nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from module_play import run_module
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
    proof = run.task_results("Prove the freeze with canary writes through the front door")[0]
    assert proof["canaries"]["create"]["status"] == 503 and proof["canaries"]["add"]["status"] == 503, proof
    assert proof["canaries"]["create"]["refused"] and proof["canaries"]["add"]["refused"], proof
    assert set(proof["reads"].values()) == {200} and len(proof["reads"]) == 3, proof
    assert proof["cleaned_up"] == [] and proof["server_version"]["api"] == "v2", proof

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


def test_a_front_door_that_lets_writes_through_is_not_a_freeze_and_the_canaries_are_taken_back(
        lab: Lab, tmp_path: Path) -> None:
    # the front door open (no freeze): both canaries get through, the module removes them from
    # the source and fails naming each answer
    run_playbook(lab, "playbooks/unfreeze.yml", tmp_path / "open")
    args = {"front_door": {"url": lab.front_door}, "source": {"url": lab.source},
            "canary_collection": "runbook_test_canary", "canary_id": "runbook-test-canary", "settle_timeout_s": 0.5}
    rc, result, out = run_module(tmp_path, "chroma_freeze_proof", args)
    assert rc != 0, out
    assert "Write freeze NOT proven" in result["msg"] and "404" in result["msg"], result["msg"]
    assert "runbook_test_canary" not in lab.collections(lab.source)
    assert result["settle"]["status"] == 404, result

    # the reads pass and the probe is refused, but the canaries are not: a gate that only refuses
    # writes to unknown collections (the settle probe) is caught by the canaries, which are taken back
    gate = lab.root / "nginx" / "server.d" / "zz_probe_only.conf"
    gate.write_text("location ~ /collections/00000000-0000-4000-8000-00000000dead/ {\n"
                    "  default_type application/json;\n  return 503 '{\"error\":\"WritesFrozen\"}';\n}\n")
    try:
        lab.reload_nginx()
        rc, result, out = run_module(tmp_path, "chroma_freeze_proof", dict(args, settle_timeout_s=10),
                                     name="probe-only")
    finally:
        gate.unlink()
        lab.reload_nginx()
    assert rc != 0, out
    assert result["canaries"]["create"]["status"] in (200, 201) and not result["canaries"]["add"]["refused"], result
    assert sorted(result["cleaned_up"]) == sorted(["collection runbook_test_canary",
                                                   f"record runbook-test-canary in {result['collection']}"]), result
    assert "taken back on the source" in result["msg"], result["msg"]
    assert "runbook_test_canary" not in lab.collections(lab.source)
    coll = lab.collections(lab.source)[result["collection"]]
    status, got = http(f"{lab.source}{DB_API}/collections/{coll['id']}/get", method="POST",
                       body={"ids": ["runbook-test-canary"]})
    assert status == 200 and got["ids"] == [], got
