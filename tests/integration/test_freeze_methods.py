"""Freeze methods as a plug point (chroma_freeze_method) and the drift check, on a real lab.

- none: refused unless acknowledged (-e accept_no_freeze=yes); accepted, it freezes nothing
  and says so in the run's state.
- stop_writers: the writer apps (supervisor programs) are stopped and proven stopped, the
  front door is never touched; a write that reaches the source anyway (a writer nobody
  listed) changes the source's fingerprint: the drift check run beside the validation finds
  it, so the gate fails before the cutover and the
  automatic rollback starts the writers again.
- proxy (today's method) runs through every other runbook test (test_runbook_*.py).
One lab for the module, tests in file order.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from runbook_lab import DB_API, VENV_BIN, Lab, free_port_base, http, run_playbook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("freeze-methods"), free_port_base(), scale=0.2).up()
    try:
        yield lab
    finally:
        lab.down()


def program_status(lab: Lab, program: str) -> str:
    done = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(lab.root / "supervisord.conf"), "status", program],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout


def answers(url: str) -> bool:
    try:
        return http(url, timeout=5)[0] == 200
    except OSError:   # connection refused: nothing listens
        return False


def freeze_files(lab: Lab) -> list[Path]:
    return sorted((lab.root / "nginx").glob("*.d/chroma_runbook_freeze_*.conf"))


def test_none_is_refused_unless_acknowledged(lab: Lab, tmp_path: Path) -> None:
    counts = lab.counts(lab.source)
    refused = run_playbook(lab, "migrate.yml", tmp_path / "refused",
                           {"confirm": "yes", "chroma_freeze_method": "none", "chroma_expected_counts": counts})
    assert refused.status == "failed"
    assert "chroma_freeze_method: must be proxy" in refused.stdout and "accept_no_freeze=yes" in refused.stdout, refused.explain()
    assert not any(p.startswith("(2/7)") for p in refused.plays), "stopped at the preflight, before the freeze"

    accepted = run_playbook(lab, "migrate.yml", tmp_path / "accepted",
                            {"confirm": "yes", "chroma_freeze_method": "none", "accept_no_freeze": "yes",
                             "chroma_expected_counts": counts}, cmdline="--tags preflight,freeze")
    assert accepted.status == "successful", accepted.explain()
    freeze = lab.latest_state()["data"]["freeze"]
    assert freeze["method"] == "none" and freeze["accepted_no_freeze"] is True and not freeze.get("frozen_at")
    assert freeze_files(lab) == []
    status, body = lab.front_door_add("openwebui_core", "freeze-none-open")     # writes stay open
    assert status in (200, 201), body
    lab.source_delete("openwebui_core", "freeze-none-open")
    undo = run_playbook(lab, "rollback.yml", tmp_path / "undo", {"confirm": "yes"})
    assert undo.status == "successful", undo.explain()


def test_stop_writers_then_a_slipped_write_fails_the_gate_and_the_writers_come_back(lab: Lab, tmp_path: Path) -> None:
    counts = lab.counts(lab.source)
    extra = {"confirm": "yes", "chroma_freeze_method": "stop_writers", "chroma_expected_counts": counts}
    # up to the migration: the second run's validation runs the drift check beside its checks
    first = run_playbook(lab, "migrate.yml", tmp_path / "first", extra,
                         cmdline="--tags preflight,freeze,snapshot,migrate")
    assert first.status == "successful", first.explain()
    state = lab.latest_state()
    freeze = state["data"]["freeze"]
    assert freeze["method"] == "stop_writers" and sorted(freeze["writers"]) == sorted(lab.apps)
    assert freeze["frozen_at"] and freeze["proof"]["writers_stopped"].keys() == lab.apps.keys()
    for app in lab.apps:
        assert "STOPPED" in program_status(lab, app), program_status(lab, app)
        assert freeze["proof"]["writers_stopped"][app]["health"] == -1
        assert not answers(f"{lab.apps[app]}/health")
    assert freeze_files(lab) == [], "stop_writers never touches the front door"
    assert "source_fingerprint" in state["data"]

    # a write no freeze stopped (a writer nobody listed) lands on the source after the snapshot
    coll = lab.collections(lab.source)["openwebui_docs"]
    status, body = http(f"{lab.source}{DB_API}/collections/{coll['id']}/add", method="POST",
                        body={"ids": ["slipped-write"], "embeddings": [[0.01] * 768], "documents": ["after the snapshot"]})
    assert status in (200, 201), body

    second = run_playbook(lab, "migrate.yml", tmp_path / "second", extra)
    assert second.status == "failed"
    assert any("the source changed since the snapshot" in msg and "openwebui_docs written" in msg
               and "found by the drift check run beside the validation" in msg
               for _, msg in second.failed_tasks), second.explain()
    state = lab.latest_state()
    assert state["status"] == "rolled_back", state["status"]
    for app in lab.apps:                                   # the rollback's undo of stop_writers
        assert "RUNNING" in program_status(lab, app), program_status(lab, app)
        assert lab.target not in lab.app_health(app)["chroma_url"] and lab.target not in lab.app_config(app)
    lab.source_delete("openwebui_docs", "slipped-write")
