"""Failures after the freeze end rolled back: apps on the source, writes open, a report, a failed play.

The lab holds the "damaged" dataset (8 % unfixable records). First the
migration's own 95 % gate stops before writing anything; then, with
min_valid_ratio lowered to 0.5, the migration imports what is valid and the
validator, asked for bit-exact embeddings (cosine storage moves vectors by
~2e-7), says FAILED: the go/no-go gate rolls back before any app is touched.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from runbook_lab import Lab, WebhookReceiver, free_port_base, milestones, run_playbook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("runbook-damaged"), free_port_base(), variant="damaged", scale=0.3).up()
    try:
        yield lab
    finally:
        lab.down()


def _apps_on_source_and_writes_open(lab: Lab, source_before: dict[str, int]) -> None:
    for name in lab.apps:
        assert lab.app_health(name)["chroma_url"] == lab.front_door
    status, body = lab.front_door_add("openwebui_core", "runbook-test-open-after-failure")
    assert status in (200, 201), body
    lab.source_delete("openwebui_core", "runbook-test-open-after-failure")
    assert lab.counts(lab.source) == source_before


def test_too_many_invalid_records_stop_before_writing_and_roll_back(lab: Lab, tmp_path: Path) -> None:
    source_before = lab.counts(lab.source)
    run = run_playbook(lab, "migrate.yml", tmp_path, {"confirm": "yes", "chroma_expected_counts": source_before})
    assert run.status == "failed", run.explain()
    failed = dict(run.failed_tasks)
    stop = failed.get("Stop - the migration did not complete", "")
    assert stop.startswith("MIGRATION STOPPED at migrate") and "ROLLED BACK" in stop, run.failed_tasks
    assert not any(p.startswith("(5/7)") for p in run.plays), run.plays
    assert lab.counts(lab.target) == {}, "nothing may be written below the 95 % gate"
    _apps_on_source_and_writes_open(lab, source_before)
    state = lab.latest_state()
    assert state["status"] == "rolled_back" and state["steps"]["migrate"]["outcome"] == "failed"
    report = json.loads((lab.latest_run() / "reports" / "rollback_report.json").read_text())
    assert report["trigger"] == "automatic" and report["reason"].startswith("migrate:"), report
    assert report["source"]["checked"] is True and report["source"]["restored"] == []


def test_validation_failure_rolls_back_automatically(lab: Lab, tmp_path: Path) -> None:
    source_before = lab.counts(lab.source)
    receiver = WebhookReceiver(tmp_path).start()
    try:
        run = run_playbook(lab, "migrate.yml", tmp_path,
                           {"confirm": "yes", "chroma_min_valid_ratio": 0.5, "chroma_expected_counts": source_before,
                            "chroma_validate_thresholds": {"embedding_atol": 0, "embedding_rtol": 0},
                            # a pre-copy's pre-validation would stop this before the freeze (last test)
                            "chroma_precopy": False,
                            "chroma_notify_webhooks": [receiver.hook()]})
        texts = receiver.texts()
    finally:
        receiver.stop()
    assert run.status == "failed", run.explain()
    # the operators heard every milestone, the failure with its reason before the rollback
    assert milestones(texts) == ["WINDOW OPENED", "FROZEN", "GO/NO-GO", "FAILED", "ROLLBACK STARTED",
                                 "ROLLBACK FINISHED"], texts
    assert "NO-GO - validation FAILED" in texts[2] and "data loss" in texts[2], texts[2]
    assert "FAILED at gate: validation FAILED: Embedding Corruption" in texts[3], texts[3]
    # the gate failed on purpose, naming the validator's verdict, after the rollback ran
    failed = dict(run.failed_tasks)
    assert "Stop - the migration did not complete" in failed, run.failed_tasks
    assert "validation FAILED" in failed["Stop - the migration did not complete"]
    assert "ROLLED BACK" in failed["Stop - the migration did not complete"]
    assert not any(p.startswith("(7/7)") for p in run.plays), run.plays
    assert run.task_results("Record the rollback in the run's state"), "the rollback role did not run"

    # apps never left the source; writes are open again; the source is as it was
    _apps_on_source_and_writes_open(lab, source_before)

    state = lab.latest_state()
    assert state["status"] == "rolled_back"
    assert state["steps"]["validate"]["result"]["overall_status"] == "FAILED"
    assert state["steps"]["gate"]["outcome"] == "failed"
    reports = lab.latest_run() / "reports"
    report = json.loads((reports / "rollback_report.json").read_text())
    assert report["trigger"] == "automatic"
    assert report["reason"].startswith("gate: validation FAILED: Embedding Corruption"), report["reason"]
    assert report["apps"] == [] and report["source"]["checked"] is True
    assert (reports / "rollback_report.md").is_file() and (reports / "validation_report.md").is_file()
    # chroma_precopy false: every check ran under the freeze, and the report says so
    validation = json.loads((reports / "validation_report.json").read_text())
    assert validation["timing"]["precopy"] is False and validation["timing"]["mode"] == "all under the freeze"
    assert all(c["ran_text"].startswith("under the freeze (all records, ") for c in validation["checks"])
    assert "| Before the freeze | - (pre-copy off) |" in (reports / "validation_report.md").read_text()
    # nothing says "complete": no migration record
    assert not (reports / "migration_record.md").exists()


def test_rollback_with_drop_target_drops_the_runs_staging_leftovers(lab: Lab, tmp_path: Path) -> None:
    """A migration killed mid-import leaves staging collections named after its run; rollback.yml
    with drop_target=true drops those (and nothing of another run)."""
    import chromadb
    from chromadb.config import Settings

    from chroma_runbook.migrate.staging import staging_name

    run_id = lab.latest_state()["run_id"]
    client = chromadb.HttpClient(host="127.0.0.1", port=lab.port_base + 2,
                                 settings=Settings(anonymized_telemetry=False))
    ours, theirs = staging_name(run_id, "sergio_corpus"), staging_name("another-run", "sergio_corpus")
    for name in (ours, theirs):
        client.create_collection(name, embedding_function=None).add(ids=["left"], embeddings=[[0.25] * 8])
    try:
        run = run_playbook(lab, "rollback.yml", tmp_path, {"drop_target": True})
        assert run.status == "successful", run.explain()
        names = {c.name for c in client.list_collections()}
        assert ours not in names and theirs in names, names
        assert any(t.startswith("Drop exactly the target collections") for t in run.changed_tasks), run.changed_tasks
    finally:
        if theirs in {c.name for c in client.list_collections()}:
            client.delete_collection(theirs)


def test_a_failed_prevalidation_stops_before_the_freeze(lab: Lab, tmp_path: Path) -> None:
    """With the pre-copy, the record checks run on the staging collections before the freeze:
    a FAILED verdict there stops the run with nothing frozen and the apps still writing."""
    source_before = lab.counts(lab.source)
    receiver = WebhookReceiver(tmp_path).start()
    try:
        run = run_playbook(lab, "migrate.yml", tmp_path,
                           {"confirm": "yes", "chroma_min_valid_ratio": 0.5, "chroma_expected_counts": source_before,
                            "chroma_validate_thresholds": {"embedding_atol": 0, "embedding_rtol": 0},
                            "chroma_notify_webhooks": [receiver.hook()]})
        texts = receiver.texts()
    finally:
        receiver.stop()
    assert run.status == "failed", run.explain()
    failed = dict(run.failed_tasks)
    stop = failed.get("Stop before freezing anything", "")
    assert stop.startswith("STOPPED BEFORE THE FREEZE: pre-validation FAILED (Embedding Corruption"), run.failed_tasks
    assert "Nothing was frozen" in stop
    assert not any(p.startswith("(2/7)") for p in run.plays), run.plays
    assert milestones(texts) == [], texts             # no window was opened, nothing frozen
    state = lab.latest_state()
    assert state["status"] == "stopped" and "freeze" not in state["steps"], state["steps"].keys()
    assert state["steps"]["prevalidate"]["result"]["overall_status"] == "FAILED"
    report = json.loads((lab.latest_run() / "reports" / "validation_report.json").read_text())
    emb = next(c for c in report["checks"] if c["name"] == "embedding_integrity")
    assert emb["status"] == "FAILED" and emb["ran_text"].startswith("before the freeze (pre-copy, ")
    # the apps still write through the front door, to the source
    _apps_on_source_and_writes_open(lab, source_before)
