"""Every step record is written by its role (issue 11 point 4), and the gate is a role.

- chroma_gate on its own (a real ansible-playbook, no Chroma needed: no fingerprint means no
  drift check): PASSED records the gate ok, WARNING holds for the operator (run stopped, step
  held) unless accepted, FAILED records the step failed and fails with the verdict's reason.
- Statically: no playbook records a step (only roles do) and no YAML builds a timestamp
  (chroma_run stamps times itself).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from module_play import run_module, run_role_play

REPO = Path(__file__).resolve().parents[2]

OPEN_RUN = """\
    - name: Open a run
      chroma_run:
        action: open
        runs_dir: "{{ chroma_runs_dir }}"
      register: opened

    - name: Share it
      ansible.builtin.set_fact:
        chroma_run_id: "{{ opened.run_id }}"
        chroma_run_state: "{{ opened.state }}"

"""


def run_gate(tmp_path: Path, verdict: dict[str, Any], **extra: Any) -> tuple[int, str, dict[str, Any]]:
    runs = tmp_path / "runs"
    proc = run_role_play(tmp_path, "chroma_gate", {
        "chroma_runs_dir": str(runs), "chroma_source": {"url": "http://127.0.0.1:9"},
        "chroma_validate_result": verdict, **extra}, tasks_before=OPEN_RUN, playbook="gate.yml")
    state = json.loads(next(runs.glob("*/state.json")).read_text())
    return proc.returncode, proc.stdout + proc.stderr, state


def _recorded(step: dict[str, Any]) -> None:
    assert step["started_at"] and step["ended_at"] and step["duration_s"] is not None, step


def test_gate_passed_records_go(tmp_path: Path) -> None:
    rc, out, state = run_gate(tmp_path, {"overall_status": "PASSED", "rollback_reason": ""})
    assert rc == 0, out
    gate = state["steps"]["gate"]
    _recorded(gate)
    assert gate["outcome"] == "ok" and gate["result"] == {
        "decision": "GO", "validation": "PASSED", "drift_check": "none (no fingerprint of the source)"}, gate


# The drift check the validation ran beside its checks (chroma_validate_drift_check): the gate decides on
# it when it finished against the same fingerprint, and fingerprints the source itself otherwise.
FINGERPRINT = {"scope": "all", "collections": {"docs": {"count": 3, "sha256": "0" * 64}}, "sha256": "f" * 64}
PASSED = {"overall_status": "PASSED", "rollback_reason": ""}


def beside(drift: list[dict[str, Any]], sha: str = "f" * 64, checked: bool = True) -> dict[str, Any]:
    return {"checked": checked, "drift": drift, "expected_sha256": sha, "source": "http://127.0.0.1:9",
            "started_at": "2026-12-01T10:00:00Z", "ended_at": "2026-12-01T10:00:02Z"}


def test_gate_goes_on_the_drift_check_run_beside_the_validation(tmp_path: Path) -> None:
    # the source (port 9) answers nothing: a gate that read it itself would fail
    rc, out, state = run_gate(tmp_path, PASSED, chroma_gate_fingerprint=FINGERPRINT,
                              chroma_validate_drift_check=beside([]))
    assert rc == 0, out
    assert state["steps"]["gate"]["result"]["drift_check"] == (
        "source unchanged since the snapshot, checked beside the validation "
        "(2026-12-01T10:00:00Z to 2026-12-01T10:00:02Z)"), state["steps"]["gate"]


def test_gate_says_no_go_on_drift_found_beside_the_validation(tmp_path: Path) -> None:
    rc, out, state = run_gate(tmp_path, PASSED, chroma_gate_fingerprint=FINGERPRINT,
                              chroma_validate_drift_check=beside([{"collection": "docs", "what": "written"}]))
    assert rc != 0, out
    gate = state["steps"]["gate"]
    assert gate["outcome"] == "failed" and gate["result"]["decision"] == "NO-GO", gate
    assert gate["message"].startswith("the source changed since the snapshot (freeze method proxy): docs written"), gate
    assert "found by the drift check run beside the validation" in gate["message"], gate


def test_gate_fingerprints_the_source_itself_when_that_check_does_not_count(tmp_path: Path, chroma_factory) -> None:
    from chroma_runbook.io.fingerprint import take_fingerprint
    from chroma_runbook.io.source import open_source
    from snapshot_data import populate

    server = chroma_factory("source")
    populate(server.client())
    taken = take_fingerprint(open_source({"url": server.url}))
    server.client().get_collection("snap_l2").delete(ids=["snap_l2-000000"])      # a write after the "snapshot"
    source = {"url": server.url}
    for name, checked in {"other-fingerprint": beside([], sha="e" * 64),
                          "unfinished": beside([], sha=taken["sha256"], checked=False)}.items():
        rc, out, state = run_gate(tmp_path / name, PASSED, chroma_gate_fingerprint=taken, chroma_source=source,
                                  chroma_validate_drift_check=checked)
        assert rc != 0, out
        message = state["steps"]["gate"]["message"]
        assert message.startswith("the source changed since the snapshot (freeze method proxy): snap_l2 written"), message
        assert "beside the validation" not in message, message


def test_gate_warning_holds_for_the_operator(tmp_path: Path) -> None:
    rc, out, state = run_gate(tmp_path, {"overall_status": "WARNING", "rollback_reason": "recall 0.97"})
    assert rc != 0, out
    assert "STOPPED: validation says WARNING (recall 0.97)" in out, out
    assert state["status"] == "stopped" and "validation WARNING" in state["status_reason"], state
    gate = state["steps"]["gate"]
    _recorded(gate)
    assert gate["outcome"] == "held" and gate["result"]["decision"] == "HOLD", gate


def test_gate_warning_accepted_goes(tmp_path: Path) -> None:
    rc, out, state = run_gate(tmp_path, {"overall_status": "WARNING", "rollback_reason": "recall 0.97"},
                              accept_warnings="yes")
    assert rc == 0, out
    assert state["steps"]["gate"]["outcome"] == "ok" and state["status"] == "running", state


def test_gate_failed_records_no_go_with_the_reason(tmp_path: Path) -> None:
    rc, out, state = run_gate(tmp_path, {"overall_status": "FAILED", "rollback_reason": "Embedding Corruption"})
    assert rc != 0, out
    gate = state["steps"]["gate"]
    _recorded(gate)
    assert gate["outcome"] == "failed" and gate["message"] == "validation FAILED: Embedding Corruption", gate
    assert gate["result"]["decision"] == "NO-GO", gate


def test_chroma_run_stamps_times_itself(tmp_path: Path) -> None:
    """update/step_end stamp data keys with the engine's clock; clock reads it; event is gone."""
    runs = str(tmp_path / "runs")
    rc, opened, out = run_module(tmp_path, "chroma_run", {"action": "open", "runs_dir": runs}, name="open")
    assert rc == 0, out
    rc, res, out = run_module(tmp_path, "chroma_run", {
        "action": "update", "runs_dir": runs, "run_id": opened["run_id"], "data": {"freeze": {"method": "proxy"}},
        "stamp": ["freeze.frozen_at", ["apps", "app1.example.com", "cutover_at"]]}, name="stamp")
    assert rc == 0 and res["changed"], out
    data = res["state"]["data"]
    frozen, cut = data["freeze"]["frozen_at"], data["apps"]["app1.example.com"]["cutover_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", frozen) and data["freeze"]["method"] == "proxy", data
    assert frozen == cut, data
    rc, res, out = run_module(tmp_path, "chroma_run", {"action": "clock", "runs_dir": runs, "since": frozen},
                              name="clock")
    assert rc == 0 and not res["changed"] and res["now"] >= frozen and res["elapsed_s"] >= 0, out
    rc, res, out = run_module(tmp_path, "chroma_run", {"action": "event", "runs_dir": runs, "run_id": opened["run_id"]},
                              name="event")
    assert rc != 0 and "value of action must be one of" in res.get("msg", ""), out


def _tasks(node: Any) -> list[dict[str, Any]]:
    """Every task (plays' tasks, blocks, rescues) in a parsed YAML document."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            found += _tasks(item)
    elif isinstance(node, dict):
        found.append(node)
        for key in ("tasks", "pre_tasks", "post_tasks", "block", "rescue", "always", "handlers"):
            found += _tasks(node.get(key))
    return found


def test_no_playbook_records_a_step() -> None:
    """Only roles call chroma_run with step_start/step_end: playbooks only sequence them."""
    offenders = []
    for path in sorted(REPO.glob("*.yml")) + sorted((REPO / "playbooks").rglob("*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text())):
            call = task.get("chroma_run") or task.get("ansible.builtin.chroma_run") or {}
            if isinstance(call, dict) and call.get("action") in ("step_start", "step_end"):
                offenders.append(f"{path.relative_to(REPO)}: {task.get('name')}")
    assert offenders == [], offenders


def test_no_yaml_builds_a_timestamp() -> None:
    """chroma_run stamps times itself: no strftime literal (or now(fmt=...)) anywhere in the YAML."""
    pattern = re.compile(r"fmt=|%Y-%m-%d|%H:%M:%S")
    offenders = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
                 for top in ("roles", "playbooks", "molecule", "group_vars", "inventory")
                 for path in sorted((REPO / top).rglob("*.yml"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == [], offenders
