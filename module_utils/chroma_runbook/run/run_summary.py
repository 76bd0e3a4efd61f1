"""Figures an operator wants at the end of a run, computed from its state."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from .run_state import parse_time, seconds_between

# The order steps are shown in; unknown steps follow in start order.
STEP_ORDER = ("preflight", "precopy", "prevalidate", "freeze", "snapshot", "migrate", "validate", "gate", "cutover", "rollback")


def _ordered_steps(steps: Mapping[str, Mapping[str, Any]]) -> list[str]:
    known = [s for s in STEP_ORDER if s in steps]
    rest = sorted((s for s in steps if s not in STEP_ORDER), key=lambda s: steps[s].get("started_at") or "")
    return known + rest


def step_timings(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per step: name, outcome, start, end, seconds."""
    steps = state.get("steps", {})
    return [
        {
            "step": name,
            "outcome": steps[name].get("outcome"),
            "started_at": steps[name].get("started_at"),
            "ended_at": steps[name].get("ended_at"),
            "duration_s": steps[name].get("duration_s"),
            "attempts": steps[name].get("attempts", 1),
        }
        for name in _ordered_steps(steps)
    ]


def _span(stamps: list[Optional[str]], pick_last: bool) -> Optional[str]:
    present = [s for s in stamps if s]
    if not present:
        return None
    ordered = sorted(present, key=lambda s: parse_time(s))  # type: ignore[arg-type, return-value]
    return ordered[-1] if pick_last else ordered[0]


def freeze_window(state: Mapping[str, Any]) -> dict[str, Any]:
    """How long writes were frozen for the apps.

    Writes are frozen from the moment the freeze was applied until the apps
    could write again: on the target once the cutover ended, or on the source
    once the freeze was lifted (rollback). While neither happened, the window
    is still open.
    """
    data = state.get("data", {})
    freeze = data.get("freeze", {})
    frozen_at = freeze.get("frozen_at")
    cutover_end = (state.get("steps", {}).get("cutover") or {}).get("ended_at")
    cutover_ok = (state.get("steps", {}).get("cutover") or {}).get("outcome") == "ok"
    released_at = freeze.get("released_at")
    ends = [released_at] + ([cutover_end] if cutover_ok else [])
    writes_open_at = _span(ends, pick_last=False) if frozen_at else None
    return {
        "frozen_at": frozen_at,
        "writes_open_at": writes_open_at,
        "still_frozen_for_apps": bool(frozen_at) and writes_open_at is None,
        "duration_s": seconds_between(frozen_at, writes_open_at),
        "source_frozen": bool(frozen_at) and not released_at,
    }


def app_write_outages(state: Mapping[str, Any]) -> dict[str, Optional[float]]:
    """Per app: seconds from the freeze until it accepted writes on the target (healthy there)."""
    frozen_at = state.get("data", {}).get("freeze", {}).get("frozen_at")
    apps = state.get("data", {}).get("apps", {}) or {}
    return {name: seconds_between(frozen_at, app.get("writes_open_at"))
            for name, app in sorted(apps.items()) if frozen_at and app.get("writes_open_at")}


def precopy_split(state: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """What ran before the freeze (the pre-copy, live) and what under it (the delta, its checks)."""
    steps = state.get("steps", {})
    pre = (steps.get("precopy") or {}).get("result") or {}
    migrate = (steps.get("migrate") or {}).get("result") or {}
    delta = migrate.get("delta") or {}
    if not pre and not delta:
        return None
    before_checks = ((steps.get("prevalidate") or {}).get("result") or {}).get("timing") or {}
    under_checks = ((steps.get("validate") or {}).get("result") or {}).get("timing") or {}
    split = {
        "before_freeze": {"records_read": pre.get("read"), "staged": pre.get("added", 0) + pre.get("replaced", 0),
                          "duration_s": pre.get("duration_s"),
                          "checks": "every record transformed and validated against the profile while live; then "
                                    "the record checks on the staged records the source had not changed since"},
        "under_freeze": {"records_read": delta.get("read"), "added": delta.get("added"),
                         "replaced": delta.get("replaced"), "deleted": delta.get("deleted"),
                         "duration_s": delta.get("duration_s"), "verified_records": migrate.get("verified_records"),
                         "read_from": migrate.get("source_read_from"),
                         "checks": "whole frozen source validated again (rejects, min_valid_ratio); counts of every "
                                   "target; every record the delta sent plus the sample compared field by field; "
                                   "then the validate step: the record checks on every record not checked before the "
                                   "freeze with its content now (or sent by the delta), the totals on all"},
    }
    split["before_freeze"]["validation"] = {"duration_s": before_checks.get("before_freeze_s"),
                                            "records": before_checks.get("records_before_freeze"),
                                            "status": ((steps.get("prevalidate") or {}).get("result") or {})
                                            .get("overall_status")}
    split["under_freeze"]["validation"] = {"duration_s": under_checks.get("under_freeze_s"),
                                           "records": under_checks.get("records_under_freeze"),
                                           "mode": under_checks.get("mode")}
    return split


def _read_from(where: Optional[str]) -> str:
    """" from the run's snapshot" / " from the server (why)" for the delta's line; "" when not recorded."""
    if not where:
        return ""
    return " from the run's snapshot" if str(where).startswith("snapshot") else f" from the {where}"


def migration_duration(state: Mapping[str, Any]) -> Optional[float]:
    """From the run's first step start to the end of its cutover."""
    steps = state.get("steps", {})
    start = _span([s.get("started_at") for s in steps.values()], pick_last=False)
    end = (steps.get("cutover") or {}).get("ended_at")
    return seconds_between(start, end)


def rollback_duration(state: Mapping[str, Any]) -> Optional[float]:
    """From the rollback's start until service was back (apps healthy, writes open)."""
    rollback = state.get("data", {}).get("rollback", {})
    return seconds_between(rollback.get("started_at"), rollback.get("service_restored_at"))


def summarize(state: Mapping[str, Any], limits: Optional[Mapping[str, float]] = None) -> dict[str, Any]:
    """Timings, freeze window and targets met, ready to print and to store."""
    limits = dict(limits or {})
    freeze = freeze_window(state)
    outages = app_write_outages(state)
    freeze["app_write_outage_s"] = outages
    figures = {
        "migration_s": migration_duration(state),
        "write_freeze_s": freeze["duration_s"],
        "max_app_write_outage_s": max((v for v in outages.values() if v is not None), default=None),
        "rollback_to_service_s": rollback_duration(state),
    }
    within = {
        name: (None if figures.get(name) is None or name not in limits else figures[name] <= limits[name])
        for name in figures
    }
    return {
        "run_id": state.get("run_id"),
        "status": state.get("status"),
        "status_reason": state.get("status_reason", ""),
        "steps": step_timings(state),
        "freeze": freeze,
        "precopy": precopy_split(state),
        "figures": figures,
        "limits": limits,
        "within_limits": within,
    }


def render_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary as lines for the play's output."""
    lines = [f"run {summary['run_id']}: {summary['status']}" + (
        f" ({summary['status_reason']})" if summary.get("status_reason") else "")]
    width = max([10] + [len(str(row["step"])) for row in summary["steps"]])  # "prevalidate" is 11
    for row in summary["steps"]:
        took = "-" if row["duration_s"] is None else f"{row['duration_s']:.1f} s"
        lines.append(f"  {row['step']:<{width}} {str(row['outcome']):<8} {took}")
    limits = summary.get("limits", {})
    for name, value in summary["figures"].items():
        if value is None:
            continue
        limit = limits.get(name)
        verdict = "" if limit is None else (" (target <= %g s: %s)" % (limit, "met" if value <= limit else "MISSED"))
        lines.append(f"  {name.replace('_s', '').replace('_', ' ')}: {value:.1f} s{verdict}")
    split = summary.get("precopy")
    if split:
        before, under = split["before_freeze"], split["under_freeze"]
        lines.append(f"  before the freeze (live): pre-copy read {before['records_read']}, staged {before['staged']}"
                     f" in {before['duration_s']} s")
        checks = before.get("validation") or {}
        if checks.get("duration_s") is not None:
            lines.append(f"  before the freeze (live): validation {checks['status']} on {checks['records']} pre-copied "
                         f"records in {checks['duration_s']} s")
        if under.get("records_read") is not None:
            lines.append(f"  under the freeze: delta read {under['records_read']}{_read_from(under.get('read_from'))}, "
                         f"added {under['added']}, replaced "
                         f"{under['replaced']}, deleted {under['deleted']} in {under['duration_s']} s; verified "
                         f"{under['verified_records']} records (every one sent + sample) and all counts")
        checks = under.get("validation") or {}
        if checks.get("duration_s") is not None:
            what = (f"{checks['records']} records + totals" if checks.get("records") is not None
                    else "every record (no pre-validation)")
            lines.append(f"  under the freeze: validation on {what} in {checks['duration_s']} s")
    freeze = summary["freeze"]
    if freeze.get("still_frozen_for_apps"):
        lines.append(f"  writes frozen since {freeze['frozen_at']} and still frozen")
    return lines
