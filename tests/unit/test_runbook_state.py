"""Run ids, run directories and state files (chroma_run's engine), on a real filesystem."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chroma_runbook.run import run_state as rs
from chroma_runbook.run.run_summary import freeze_window, render_lines, summarize


def test_open_creates_the_layout_and_points_latest(tmp_path: Path) -> None:
    opened = rs.open_run(tmp_path, label="test")
    run_dir = opened.paths.run_dir
    assert opened.created and not opened.reused and opened.changed
    assert {p.name for p in run_dir.iterdir()} >= {"state.json", "checkpoint", "backups", "reports"}
    assert not (run_dir / "snapshot").exists(), "the snapshot module creates snapshot/ itself"
    assert os.readlink(tmp_path / "latest") == opened.paths.run_id
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "running" and state["run_id"] == opened.paths.run_id


def test_open_reuses_a_running_or_complete_run_and_not_a_rolled_back_one(tmp_path: Path) -> None:
    first = rs.open_run(tmp_path)
    again = rs.open_run(tmp_path)
    assert again.reused and again.paths.run_id == first.paths.run_id and not again.changed
    rs.mutate_state(first.paths, lambda s: rs.set_status(s, "complete", "done"))
    assert rs.open_run(tmp_path).paths.run_id == first.paths.run_id
    rs.mutate_state(first.paths, lambda s: rs.set_status(s, "rolled_back", "validation FAILED"))
    fresh = rs.open_run(tmp_path)
    assert fresh.created and fresh.paths.run_id != first.paths.run_id
    assert os.readlink(tmp_path / "latest") == fresh.paths.run_id


def test_open_without_write_changes_nothing_on_disk(tmp_path: Path) -> None:
    opened = rs.open_run(tmp_path / "runs", write=False)
    assert opened.created and opened.changed
    assert not (tmp_path / "runs").exists()


def test_a_finished_step_keeps_its_first_record(tmp_path: Path) -> None:
    paths = rs.open_run(tmp_path).paths
    changed, state = rs.mutate_state(paths, lambda s: rs.end_step(s, "snapshot", "ok", {"n": 1}, "", "2026-01-01T00:00:00.000Z"))
    assert changed and state["steps"]["snapshot"]["attempts"] == 1
    assert state["steps"]["snapshot"]["started_at"] == "2026-01-01T00:00:00.000Z"
    changed, again = rs.mutate_state(paths, lambda s: rs.end_step(s, "snapshot", "ok", {"n": 2}, ""))
    assert not changed and again["steps"]["snapshot"]["result"] == {"n": 1}


def test_a_failed_step_is_counted_and_can_succeed_later(tmp_path: Path) -> None:
    paths = rs.open_run(tmp_path).paths
    rs.mutate_state(paths, lambda s: rs.end_step(s, "migrate", "failed", {}, "target down"))
    _, state = rs.mutate_state(paths, lambda s: rs.end_step(s, "migrate", "ok", {"imported_total": 5}, ""))
    assert state["steps"]["migrate"]["attempts"] == 2 and state["steps"]["migrate"]["outcome"] == "ok"


def test_bad_outcome_status_and_run_id_are_refused_by_name(tmp_path: Path) -> None:
    paths = rs.open_run(tmp_path).paths
    with pytest.raises(rs.RunStateError, match="outcome"):
        rs.mutate_state(paths, lambda s: rs.end_step(s, "x", "maybe", {}, ""))
    with pytest.raises(rs.RunStateError, match="status"):
        rs.mutate_state(paths, lambda s: rs.set_status(s, "finished", ""))
    with pytest.raises(rs.RunStateError, match="run_id"):
        rs.validate_run_id("../etc")


def test_deep_merge_merges_dicts_and_deletes_nulls() -> None:
    base = {"freeze": {"frozen_at": "a", "released_at": "b"}, "apps": {"x": {"backup": "/b"}}}
    rs.deep_merge(base, {"freeze": {"released_at": None}, "apps": {"x": {"cutover_at": "c"}, "y": {"z": None, "w": 1}}})
    assert base == {"freeze": {"frozen_at": "a"}, "apps": {"x": {"backup": "/b", "cutover_at": "c"}, "y": {"w": 1}}}


def test_find_run_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(rs.RunStateError, match="no run found"):
        rs.find_run(tmp_path, None)
    opened = rs.open_run(tmp_path)
    paths, _ = rs.find_run(tmp_path, None)
    assert paths.run_id == opened.paths.run_id
    with pytest.raises(rs.RunStateError, match="known runs: " + opened.paths.run_id):
        rs.find_run(tmp_path, "20200101T000000Z-dead")


def test_write_json_if_changed_is_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    assert rs.write_json_if_changed(target, {"a": 1})
    assert not rs.write_json_if_changed(target, {"a": 1})
    assert rs.write_json_if_changed(target, {"a": 2}, write=False)
    assert json.loads(target.read_text()) == {"a": 1}


def _state(**data: object) -> dict:
    state = rs.empty_state("r1")
    state["steps"] = {
        "preflight": {"started_at": "2026-01-01T00:00:00.000Z", "ended_at": "2026-01-01T00:00:02.000Z", "duration_s": 2.0,
                      "outcome": "ok"},
        "cutover": {"started_at": "2026-01-01T00:00:40.000Z", "ended_at": "2026-01-01T00:00:50.000Z", "duration_s": 10.0,
                    "outcome": "ok"},
    }
    state["data"] = dict(data)
    return state


def test_freeze_window_ends_at_the_cutover_or_the_unfreeze() -> None:
    state = _state(freeze={"frozen_at": "2026-01-01T00:00:03.000Z"})
    window = freeze_window(state)
    assert window["duration_s"] == 47.0 and window["source_frozen"] and not window["still_frozen_for_apps"]
    state["data"]["freeze"]["released_at"] = "2026-01-01T00:00:30.000Z"
    assert freeze_window(state)["duration_s"] == 27.0
    state["steps"].pop("cutover")
    state["data"]["freeze"].pop("released_at")
    assert freeze_window(state)["still_frozen_for_apps"]


def test_summary_compares_figures_with_limits() -> None:
    state = _state(freeze={"frozen_at": "2026-01-01T00:00:03.000Z"},
                   rollback={"started_at": "2026-01-01T00:01:00.000Z", "service_restored_at": "2026-01-01T00:01:12.500Z"})
    summary = summarize(state, {"migration_s": 60, "write_freeze_s": 45, "rollback_to_service_s": 20})
    assert summary["figures"] == {"migration_s": 50.0, "write_freeze_s": 47.0, "max_app_write_outage_s": None,
                                  "rollback_to_service_s": 12.5}
    assert summary["within_limits"] == {"migration_s": True, "write_freeze_s": False, "max_app_write_outage_s": None,
                                        "rollback_to_service_s": True}
    lines = render_lines(summary)
    assert any("write freeze: 47.0 s (target <= 45 s: MISSED)" in line for line in lines), lines
    assert [row["step"] for row in summary["steps"]] == ["preflight", "cutover"]


def test_summary_reports_the_largest_app_write_outage() -> None:
    state = _state(freeze={"frozen_at": "2026-01-01T00:00:03.000Z"},
                   apps={"app_a": {"writes_open_at": "2026-01-01T00:00:10.500Z"},
                         "app_b": {"writes_open_at": "2026-01-01T00:00:12.000Z"}, "app_c": {}})
    summary = summarize(state, {"write_freeze_s": 15})
    assert summary["freeze"]["app_write_outage_s"] == {"app_a": 7.5, "app_b": 9.0}
    assert summary["figures"]["max_app_write_outage_s"] == 9.0
    assert any("max app write outage: 9.0 s" in line for line in render_lines(summary))


def test_summary_says_what_ran_before_and_under_the_freeze() -> None:
    state = _state(freeze={"frozen_at": "2026-01-01T00:00:03.000Z"})
    state["steps"]["precopy"] = {"outcome": "ok", "result": {"read": 100, "added": 98, "replaced": 0, "duration_s": 4.0}}
    state["steps"]["migrate"] = {"outcome": "ok", "result": {"verified_records": 12, "delta": {
        "read": 101, "added": 3, "replaced": 2, "deleted": 1, "duration_s": 0.5}}}
    state["steps"]["prevalidate"] = {"outcome": "ok", "started_at": "2026-01-01T00:00:01.000Z",
                                     "ended_at": "2026-01-01T00:00:02.000Z", "duration_s": 1.0}
    lines = render_lines(summarize(state))
    assert "  before the freeze (live): pre-copy read 100, staged 98 in 4.0 s" in lines
    # the steps' outcomes line up in one column, whatever the longest step's name
    columns = {line.index(" ok ") for line in lines if line.endswith(" s") and " ok " in line}
    assert len(columns) == 1, lines
    assert any(line.startswith("  under the freeze: delta read 101, added 3, replaced 2, deleted 1") for line in lines)
    assert summarize(_state())["precopy"] is None
    state["steps"]["migrate"]["result"]["source_read_from"] = "snapshot snap-x (/runs/r/snapshot)"
    assert any(line.startswith("  under the freeze: delta read 101 from the run's snapshot, added 3")
               for line in render_lines(summarize(state)))
    state["steps"]["migrate"]["result"]["source_read_from"] = "server (snapshot snap-x is a physical snapshot; ...)"
    assert any(line.startswith("  under the freeze: delta read 101 from the server (snapshot snap-x is a physical")
               for line in render_lines(summarize(state)))


def test_describe_runs_lists_statuses_oldest_first(tmp_path: Path) -> None:
    first = rs.open_run(tmp_path).paths
    rs.mutate_state(first, lambda s: rs.set_status(s, "rolled_back", "x"))
    second = rs.open_run(tmp_path).paths
    runs = rs.describe_runs(tmp_path)
    assert [(r["run_id"], r["status"]) for r in runs] == sorted(
        [(first.run_id, "rolled_back"), (second.run_id, "running")])
