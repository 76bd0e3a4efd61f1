"""migrate.yml and rollback.yml end to end on a real lab (full legacy dataset).

One lab for this module, used as an operator would: the window (migrate.yml),
a second migrate.yml that must change nothing, then rollback.yml after the
complete cutover, twice. Tests run in file order.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest

from runbook_lab import DB_API, PHASES, Lab, PlaybookRun, WebhookReceiver, free_port_base, http, milestones, run_playbook

pytestmark = pytest.mark.slow

TARGETS = {"sergio_personality", "sergio_rhetorical", "sergio_humor", "sergio_corpus"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("runbook-lab"), free_port_base()).up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver(tmp_path_factory.mktemp("webhooks")).start()
    try:
        yield hooks
    finally:
        hooks.stop()


@pytest.fixture(scope="module")
def first_run(lab: Lab, receiver: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory) -> PlaybookRun:
    # one working webhook, one answering 500, one where nothing listens: the last two only warn
    hooks = [receiver.hook(), f"{receiver.url}/status/500", "http://127.0.0.1:9/closed"]
    return run_playbook(lab, "migrate.yml", tmp_path_factory.mktemp("runner"),
                        {"confirm": "yes", "chroma_notify_webhooks": hooks}, cmdline="--diff")


def test_happy_path_cuts_both_apps_over_and_leaves_the_source_frozen(lab: Lab, first_run: PlaybookRun) -> None:
    assert first_run.status == "successful", first_run.explain()
    assert first_run.total("failures") == 0
    # the seven numbered phases ran, in order, after the health play
    numbered = [p for p in first_run.plays if p.startswith("(")]
    assert [p.split(":")[0] for p in numbered if not p.startswith("(7/7)")] == [p for p in PHASES[:6]]
    assert first_run.plays[0].startswith("HEALTH")
    assert any(p.startswith("(7/7) CUTOVER") for p in first_run.plays)

    for name in lab.apps:
        health = lab.app_health(name)
        assert health["chroma_url"] == lab.target, health
        assert TARGETS <= set(health["collections"]), health
        status, found = http(f"{lab.apps[name]}/search?q=funny+joke&collection=sergio_humor&n=3")
        assert status == 200 and found["results"], found
    assert f"CHROMADB_URL={lab.target}\n" in lab.app_config("app_chatbot")
    # Open WebUI's keys, each derived from the target; headers as k=v pairs, read back by the app
    target_port = lab.target.rsplit(":", 1)[1]
    owui = lab.app_config("app_openwebui")
    for line in ("CHROMA_HTTP_HOST=127.0.0.1", f"CHROMA_HTTP_PORT={target_port}", "CHROMA_HTTP_SSL=false",
                 "CHROMA_HTTP_HEADERS=X-Chroma-Token=lab-token-7f3c9a,X-Lab-Client=open-webui",
                 "CHROMA_TENANT=default_tenant", "CHROMA_DATABASE=default_database"):
        assert line in owui.splitlines(), owui
    assert "CHROMADB_URL" not in owui
    assert lab.app_health("app_openwebui")["header_names"] == ["X-Chroma-Token", "X-Lab-Client"]
    # the header value is never shown: not in the output (run with --diff), not in any event
    # (both apps are cut over in one batch: their results come in the order they finish)
    edit = first_run.openwebui_config_edits()
    assert edit and edit[0]["changed"] and edit[0]["secret_keys"] == ["CHROMA_HTTP_HEADERS"], edit
    assert edit[0]["file_changed"] and edit[0]["backup"]["taken"] and "content_b64" not in edit[0]
    assert "CHROMA_HTTP_HEADERS=********" in first_run.stdout
    assert "lab-token-7f3c9a" not in first_run.stdout
    assert "lab-token-7f3c9a" not in json.dumps(first_run.events)

    # the source stays frozen: a write through the front door is refused, a read works
    status, refused = lab.front_door_add("openwebui_core", "runbook-test-frozen")
    assert status == 503 and refused["error"] == "WritesFrozen", refused
    assert lab.counts(lab.front_door)["openwebui_core"] == 3000

    state = lab.latest_state()
    assert state["status"] == "complete"
    assert [s for s in ("preflight", "freeze", "snapshot", "migrate", "validate", "gate", "cutover")
            if state["steps"][s]["outcome"] == "ok"] == ["preflight", "freeze", "snapshot", "migrate", "validate", "gate",
                                                         "cutover"]
    # each role recorded its step once: start, end and duration from the recorded start (issue 11 point 4)
    for name, step in state["steps"].items():
        assert step["attempts"] == 1 and step["started_at"] <= step["ended_at"] and step["duration_s"] >= 0, (name, step)
    gate = state["steps"]["gate"]["result"]
    assert {k: gate[k] for k in ("decision", "validation")} == {"decision": "GO", "validation": "PASSED"}, gate
    # the drift check ran beside the validation (the gate did not read the source a second time)
    assert gate["drift_check"].startswith("source unchanged since the snapshot, checked beside the validation ("), gate
    # writes stopped (stamped by the freeze method as nginx refused them) before the freeze step's proof ended
    assert state["steps"]["freeze"]["started_at"] <= state["data"]["freeze"]["frozen_at"] <= state["steps"]["freeze"]["ended_at"]
    assert state["steps"]["validate"]["result"]["overall_status"] == "PASSED"
    imported = state["steps"]["migrate"]["result"]["target_counts"]
    assert lab.counts(lab.target) == imported
    reports = lab.latest_run() / "reports"
    assert (reports / "migration_record.md").is_file()
    summary = json.loads((reports / "summary.json").read_text())
    print("lab figures:", summary["figures"], "steps:", [(s["step"], s["duration_s"]) for s in summary["steps"]])
    assert summary["freeze"]["frozen_at"] and summary["figures"]["write_freeze_s"] > 0
    # the measured freeze is kept for the next window's estimate (the confirmation prompt)
    measured = json.loads((lab.runs_dir / "throughput.json").read_text())["run"]
    assert measured["run_id"] == state["run_id"] and measured["records"] == 8832
    assert measured["write_freeze_s"] == summary["figures"]["write_freeze_s"]
    # the migration ran in the background and showed progress from its checkpoint
    progress = [r.get("msg", "") for r in first_run.task_results("Progress")]
    # (the import runs in the pre-copy, chroma_precopy: true, or under the freeze without it)
    assert any(("phase import: batch" in m or "phase precopy: batch" in m) and "chunks/s" in m and "ETA" in m
               for m in progress), progress
    # the migrate step's report says what ran under the freeze, in words (no Python dict, no 0.0 chunks/s)
    migrated = next(r["msg"] for r in first_run.task_results("Report") if r.get("msg", "").startswith("MIGRATED"))
    assert re.search(r"\(pre-copied while live; under the freeze the delta read \d+ from the run's snapshot: "
                     r"\d+ added, \d+ replaced, \d+ deleted in [\d.]+ s\)", migrated), migrated
    assert "{" not in migrated and "chunks/s" not in migrated and "sergio_corpus " in migrated, migrated
    # no task hands chroma_migrate its arguments as one templated dict (ansible warns that is unsafe)
    assert "Using a template for task args is unsafe" not in first_run.stdout
    # before the job has listed the source, the line says so (not "0 collections, 0 chunks read")
    assert not any("(0 collections, 0 chunks read)" in m for m in progress), progress
    # the pre-copy's last line (read when the job ended) says what it staged, as its report does
    report = next(r["msg"] for r in first_run.task_results("Report") if r.get("msg", "").startswith("PRE-COPIED"))
    read, added, replaced = re.search(r"(\d+) records read, (\d+) added and (\d+) replaced", report).groups()
    assert int(added) > 8000, report
    assert f"phase precopy done: {read} chunks read, {added} added and {replaced} replaced in staging" in progress[-1], \
        (report, progress)


def test_operators_hear_each_milestone_and_failing_webhooks_only_warn(first_run: PlaybookRun,
                                                                      receiver: WebhookReceiver) -> None:
    assert first_run.status == "successful", first_run.explain()
    texts = receiver.texts()
    assert milestones(texts) == ["WINDOW OPENED", "FROZEN", "GO/NO-GO", "CUTOVER DONE"], texts
    run_id = texts[0].split()[2].rstrip(":")
    assert all(t.startswith(f"[chroma-runbook] run {run_id}: ") for t in texts), texts
    verdict = texts[2]
    assert "GO - validation PASSED" in verdict and "data loss" in verdict and "records imported" in verdict, verdict
    assert "app_chatbot, app_openwebui serve from" in texts[3] or "app_openwebui, app_chatbot serve from" in texts[3]
    assert "notification not delivered to http://127.0.0.1:" in first_run.stdout
    assert "/closed" not in first_run.stdout and "status/500" not in first_run.stdout  # webhook paths are secrets


def test_second_run_changes_nothing(lab: Lab, first_run: PlaybookRun, tmp_path: Path) -> None:
    assert first_run.status == "successful", first_run.explain()
    before = lab.latest_run().name
    again = run_playbook(lab, "migrate.yml", tmp_path, {"confirm": "yes"})
    assert again.status == "successful", again.explain()
    assert again.total("changed") == 0, again.changed_tasks
    assert lab.latest_run().name == before
    assert all(lab.app_health(name)["chroma_url"] == lab.target for name in lab.apps)


def test_rollback_refuses_when_writes_reached_the_target(lab: Lab, first_run: PlaybookRun, tmp_path: Path) -> None:
    assert first_run.status == "successful", first_run.explain()
    corpus = lab.collections(lab.target)["sergio_corpus"]
    status, body = http(f"{lab.target}{DB_API}/collections/{corpus['id']}/add", method="POST",
                        body={"ids": ["written-after-cutover"], "embeddings": [[0.02] * 768], "documents": ["new"]})
    assert status in (200, 201), body
    try:
        refused = run_playbook(lab, "rollback.yml", tmp_path)
        assert refused.status == "failed", refused.explain()
        messages = " ".join(msg for _, msg in refused.failed_tasks)
        assert "REFUSED" in messages and "written on the target after the cutover" in messages, refused.failed_tasks
        assert all(lab.app_health(name)["chroma_url"] == lab.target for name in lab.apps), "a refused rollback touched an app"
    finally:
        http(f"{lab.target}{DB_API}/collections/{corpus['id']}/delete", method="POST", body={"ids": ["written-after-cutover"]})


def test_rollback_after_a_complete_cutover_restores_service(lab: Lab, first_run: PlaybookRun, tmp_path: Path,
                                                            receiver: WebhookReceiver) -> None:
    assert first_run.status == "successful", first_run.explain()
    target_before = lab.counts(lab.target)
    receiver.clear()
    back = run_playbook(lab, "rollback.yml", tmp_path, {"chroma_notify_webhooks": [receiver.hook()]})
    assert back.status == "successful", back.explain()
    texts = receiver.texts()
    assert milestones(texts) == ["ROLLBACK STARTED", "ROLLBACK FINISHED"], texts
    assert "ROLLBACK STARTED (operator)" in texts[0] and "back to service in" in texts[1], texts
    for name in lab.apps:
        assert lab.app_health(name)["chroma_url"] == lab.front_door
    # every key comes back from the backup: the front door's port, no headers
    assert f"CHROMADB_URL={lab.front_door}\n" in lab.app_config("app_chatbot")
    owui = lab.app_config("app_openwebui").splitlines()
    assert f"CHROMA_HTTP_PORT={lab.port_base}" in owui and "CHROMA_HTTP_HEADERS=" in owui
    assert lab.app_health("app_openwebui")["header_names"] == []
    # writes are open again: a real write through the front door lands on the source
    status, body = lab.front_door_add("openwebui_core", "runbook-test-open")
    assert status in (200, 201), body
    assert lab.counts(lab.source)["openwebui_core"] == 3001
    lab.source_delete("openwebui_core", "runbook-test-open")
    # the target is kept for forensics, a report says why and how long it took
    assert lab.counts(lab.target) == target_before
    report = json.loads((lab.latest_run() / "reports" / "rollback_report.json").read_text())
    assert report["trigger"] == "operator" and report["apps"] == ["app_chatbot", "app_openwebui"]
    assert report["source"]["note"].startswith("source matched the snapshot"), report["source"]
    print("rollback back to service (s):", report["back_to_service_s"])
    assert lab.latest_state()["status"] == "rolled_back"


def test_a_second_rollback_is_safe_and_restarts_nothing(lab: Lab, tmp_path: Path) -> None:
    again = run_playbook(lab, "rollback.yml", tmp_path)
    assert again.status == "successful", again.explain()
    assert not [t for t in again.changed_tasks if t.startswith("Restart the app")], again.changed_tasks
    assert not [t for t in again.changed_tasks if t.startswith("Put each config file back")], again.changed_tasks
    for name in lab.apps:
        assert lab.app_health(name)["chroma_url"] == lab.front_door
    assert again.total("changed") == 0, again.changed_tasks  # nothing left to undo: nothing changes
    report = json.loads((lab.latest_run() / "reports" / "rollback_report.json").read_text())
    assert report["trigger"] == "operator" and report["back_to_service_s"] > 0  # the first rollback's report is kept
    status, listed = http(f"{lab.front_door}{DB_API}/collections?limit=10")
    assert status == 200 and len(listed) == 6
