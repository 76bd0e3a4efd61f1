"""A run of the runbook: its id, its directory and its state file.

Layout of ``<runs_dir>/<run_id>/``: ``state.json`` (each step's start, end and
outcome, plus facts the rollback needs), ``checkpoint/``, ``snapshot/``,
``backups/``, ``reports/``, ``rejects.jsonl`` and ``run.log.jsonl`` (one JSON
event a line). ``<runs_dir>/latest`` points at the newest run.

Every write goes through :func:`mutate_state`, which holds an exclusive lock
on ``state.lock`` and replaces ``state.json`` atomically, so hosts cut over in
parallel can record their steps at the same time.
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from ..io.clock import compact_stamp, utc_stamp
from ..io.fsutil import DIR_MODE, FILE_MODE, open_private, write_json_atomic
from .names import checkpoint_file, staging_prefix

STATE_FILE = "state.json"
LOG_FILE = "run.log.jsonl"
LATEST = "latest"
SUBDIRS = ("checkpoint", "backups", "reports")
# snapshot/ is created by the snapshot module itself (it must not exist before).
PATH_DIRS = SUBDIRS + ("snapshot",)
STATE_VERSION = 1

# A run in one of these states is picked up again by the next migrate.yml.
REUSABLE_STATUSES = frozenset({"running", "stopped", "complete"})
STATUSES = frozenset({"running", "stopped", "complete", "failed", "rolled_back", "rollback_failed"})
OUTCOMES = frozenset({"running", "ok", "failed", "held", "skipped"})
# The one rule for run ids (a directory name, a file-name part, safe in a shell): chroma_run and
# chroma_migrate both apply it, so a run directory never exists for an id the migration refuses.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunStateError(ValueError):
    """A run that cannot be found, opened or updated as asked."""


def utc_now() -> str:
    """Now as an ISO-8601 UTC timestamp with milliseconds."""
    return utc_stamp(precision="milliseconds")


def parse_time(stamp: Optional[str]) -> Optional[datetime]:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def seconds_between(start: Optional[str], end: Optional[str]) -> Optional[float]:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    return round((b - a).total_seconds(), 3)


def new_run_id(now: Optional[datetime] = None) -> str:
    """A sortable, collision-safe run id: ``20261121T170102Z-3f2a``."""
    return f"{compact_stamp(now)}-{secrets.token_hex(2)}"


def run_id_problem(run_id: Any) -> Optional[str]:
    """Why ``run_id`` is refused (None when it is fine)."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        return f"run_id must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit, got {run_id!r}"
    if run_id == LATEST:
        return f"run_id {run_id!r} is reserved (the link to the newest run)"
    return None


def validate_run_id(run_id: str) -> str:
    problem = run_id_problem(run_id)
    if problem:
        raise RunStateError(problem)
    return run_id


@dataclass(frozen=True)
class RunPaths:
    """Where one run keeps its files."""

    runs_dir: Path
    run_id: str

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_id

    @property
    def state_file(self) -> Path:
        return self.run_dir / STATE_FILE

    @property
    def log_file(self) -> Path:
        return self.run_dir / LOG_FILE

    def as_dict(self) -> dict[str, str]:
        paths = {
            "run_dir": str(self.run_dir),
            "state_file": str(self.state_file),
            "log_file": str(self.log_file),
            "rejects_file": str(self.run_dir / "rejects.jsonl"),
        }
        paths.update({f"{name}_dir": str(self.run_dir / name) for name in PATH_DIRS})
        paths["checkpoint_file"] = checkpoint_file(paths["checkpoint_dir"], self.run_id)
        paths["staging_prefix"] = staging_prefix(self.run_id)
        return paths


def empty_state(run_id: str, label: str = "") -> dict[str, Any]:
    now = utc_now()
    return {
        "version": STATE_VERSION,
        "run_id": run_id,
        "label": label,
        "created_at": now,
        "updated_at": now,
        "status": "running",
        "status_reason": "",
        "steps": {},
        "data": {},
    }


def read_state(paths: RunPaths) -> Optional[dict[str, Any]]:
    """The run's state, or None when it has no state file yet."""
    try:
        text = paths.state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunStateError(f"state file {paths.state_file} is not valid JSON: {exc}") from exc
    if not isinstance(state, dict) or state.get("run_id") != paths.run_id:
        raise RunStateError(f"state file {paths.state_file} does not belong to run {paths.run_id}")
    return state


def _write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """State and summary files: fsutil's atomic writer (file and directory fsync'd), private 0600
    (they name collections, paths and reasons)."""
    write_json_atomic(path, payload, indent=2, newline=True, mode=FILE_MODE)


@contextmanager
def _locked(paths: RunPaths) -> Iterator[None]:
    with open_private(paths.run_dir / "state.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def mutate_state(
    paths: RunPaths,
    change: Callable[[dict[str, Any]], None],
    write: bool = True,
) -> tuple[bool, dict[str, Any]]:
    """Apply ``change`` to a copy of the state; write it back if it differs.

    Returns ``(changed, new_state)``. With ``write=False`` (check mode) the
    state on disk is left alone but the answer is the same.
    """
    if not paths.run_dir.is_dir():
        if write:
            raise RunStateError(f"run directory {paths.run_dir} does not exist (open the run first)")
        state = empty_state(paths.run_id)
        change(state)
        return True, state
    with _locked(paths):
        before = read_state(paths)
        if before is None:
            raise RunStateError(f"run {paths.run_id} has no {STATE_FILE} in {paths.run_dir}")
        after = copy.deepcopy(before)
        change(after)
        if after == before:
            return False, before
        after["updated_at"] = utc_now()
        if write:
            _write_json_atomic(paths.state_file, after)
        return True, after


def append_event(paths: RunPaths, event: str, write: bool = True, **fields: Any) -> dict[str, Any]:
    """Append one JSON line to the run's log (the log is not state: no change reported)."""
    line = {"ts": utc_now(), "run_id": paths.run_id, "event": event, **fields}
    if write and paths.run_dir.is_dir():
        with open_private(paths.log_file, "a") as handle:
            handle.write(json.dumps(line, sort_keys=True, default=str) + "\n")
    return line


def write_json_if_changed(path: Path, payload: Mapping[str, Any], write: bool = True) -> bool:
    """Write ``payload`` as JSON unless the file already holds exactly it; True when it differs."""
    try:
        if json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(payload, default=str)):
            return False
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    if write:
        _write_json_atomic(path, json.loads(json.dumps(payload, default=str)))
    return True


def list_runs(runs_dir: Path) -> list[str]:
    """Run ids that have a state file, oldest first (ids sort by time)."""
    if not runs_dir.is_dir():
        return []
    return sorted(
        p.name for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink() and (p / STATE_FILE).is_file()
    )


def describe_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run with its status, oldest first; a run whose state cannot be read says so."""
    out = []
    for run_id in list_runs(runs_dir):
        paths = RunPaths(runs_dir, run_id)
        try:
            state = read_state(paths) or {}
        except RunStateError as exc:
            state = {"status": "unreadable", "status_reason": str(exc)}
        out.append({"run_id": run_id, "status": state.get("status"), "created_at": state.get("created_at"),
                    "run_dir": str(paths.run_dir)})
    return out


def latest_run_id(runs_dir: Path) -> Optional[str]:
    """The run ``latest`` points at, else the newest run directory."""
    link = runs_dir / LATEST
    if link.is_symlink():
        target = Path(os.readlink(link)).name
        if (runs_dir / target / STATE_FILE).is_file():
            return target
    runs = list_runs(runs_dir)
    return runs[-1] if runs else None


def point_latest(runs_dir: Path, run_id: str) -> bool:
    """Make ``latest`` point at ``run_id``; True when it changed."""
    link = runs_dir / LATEST
    if link.is_symlink() and os.readlink(link) == run_id:
        return False
    tmp = runs_dir / f".{LATEST}.{secrets.token_hex(4)}"
    os.symlink(run_id, tmp)
    os.replace(tmp, link)
    return True


@dataclass(frozen=True)
class OpenedRun:
    paths: RunPaths
    state: dict[str, Any]
    created: bool
    reused: bool
    changed: bool


def choose_run_id(runs_dir: Path, run_id: Optional[str], reuse: bool) -> tuple[str, bool]:
    """``(run_id, reused)``: the given id, the latest reusable run, or a new id."""
    if run_id:
        return validate_run_id(run_id), (runs_dir / run_id / STATE_FILE).is_file()
    if reuse:
        latest = latest_run_id(runs_dir)
        if latest is not None:
            state = read_state(RunPaths(runs_dir, latest)) or {}
            if state.get("status") in REUSABLE_STATUSES:
                return latest, True
    return new_run_id(), False


def open_run(
    runs_dir: Path, run_id: Optional[str] = None, reuse: bool = True, label: str = "", write: bool = True
) -> OpenedRun:
    """Find or create the run directory with its state file and ``latest`` link."""
    chosen, reused = choose_run_id(runs_dir, run_id, reuse)
    paths = RunPaths(runs_dir, chosen)
    state = read_state(paths) if reused else None
    created = state is None
    changed = False
    if write:
        for sub in ("",) + SUBDIRS:
            target = paths.run_dir / sub if sub else paths.run_dir
            if not target.is_dir():
                target.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                changed = True
            if target.stat().st_mode & 0o777 != DIR_MODE:
                os.chmod(target, DIR_MODE)  # a run holds user data (rejects, snapshot): owner only
                changed = True
        if state is None:
            state = empty_state(chosen, label)
            _write_json_atomic(paths.state_file, state)
            changed = True
        changed = point_latest(runs_dir, chosen) or changed
    elif state is None:
        state = empty_state(chosen, label)
        changed = True
    return OpenedRun(paths, state, created, reused, changed)


def find_run(runs_dir: Path, run_id: Optional[str]) -> tuple[RunPaths, dict[str, Any]]:
    """An existing run (``run_id`` or the latest); a clear error when there is none."""
    if run_id:
        validate_run_id(run_id)
    chosen = run_id or latest_run_id(runs_dir)
    if chosen is None:
        raise RunStateError(f"no run found in {runs_dir} (nothing to roll back); pass run_id=... to name one")
    paths = RunPaths(runs_dir, chosen)
    state = read_state(paths)
    if state is None:
        known = ", ".join(list_runs(runs_dir)[-5:]) or "none"
        raise RunStateError(f"run {chosen} has no state file in {paths.run_dir}; known runs: {known}")
    return paths, state


def find_run_tolerant(runs_dir: Path, run_id: Optional[str]) -> tuple[RunPaths, dict[str, Any], list[str]]:
    """Like find_run, but a state file that cannot be read gives a blank state and a problem, not an error.

    For recovery (rollback): a damaged run directory must not block it. A run_id with no
    directory at all is still an error.
    """
    if run_id:
        validate_run_id(run_id)
    chosen = run_id or latest_run_id(runs_dir)
    if chosen is None and (runs_dir / LATEST).is_symlink():
        chosen = Path(os.readlink(runs_dir / LATEST)).name
    if chosen is None:
        raise RunStateError(f"no run found in {runs_dir} (nothing to roll back); pass run_id=... to name one")
    paths = RunPaths(runs_dir, chosen)
    if not paths.run_dir.is_dir():
        known = ", ".join(list_runs(runs_dir)[-5:]) or "none"
        raise RunStateError(f"run {chosen} has no directory in {runs_dir}; known runs: {known}")
    try:
        state = read_state(paths)
        problem = "" if state is not None else f"run {chosen} has no {STATE_FILE} in {paths.run_dir}"
    except RunStateError as exc:
        state, problem = None, str(exc)
    if state is None:
        blank = empty_state(chosen)
        blank["status"] = "unreadable"
        return paths, blank, [problem]
    return paths, state, []


def set_aside_unreadable(paths: RunPaths) -> Optional[str]:
    """Rename a state file that cannot be read to ``state.json.damaged-<time>`` (kept for forensics)
    and write a blank one, so the run can be recorded again; the new name of the damaged file."""
    try:
        read_state(paths)
        if paths.state_file.is_file():
            return None
    except RunStateError:
        pass
    kept = None
    if paths.state_file.exists():
        kept = paths.run_dir / f"{STATE_FILE}.damaged-{compact_stamp()}-{secrets.token_hex(2)}"
        os.replace(paths.state_file, kept)
    _write_json_atomic(paths.state_file, empty_state(paths.run_id))
    return str(kept) if kept else None


def step_is_done(state: Mapping[str, Any], step: str) -> bool:
    return (state.get("steps", {}).get(step) or {}).get("outcome") == "ok"


def start_step(state: dict[str, Any], step: str) -> None:
    """Record a step's start, unless it already finished well (then keep its record)."""
    if step_is_done(state, step):
        return
    entry = state.setdefault("steps", {}).setdefault(step, {})
    entry.update(started_at=utc_now(), ended_at=None, duration_s=None, outcome="running")
    entry["attempts"] = int(entry.get("attempts", 0)) + 1


def end_step(
    state: dict[str, Any],
    step: str,
    outcome: str,
    result: Mapping[str, Any],
    message: str,
    started_at: Optional[str] = None,
) -> None:
    """Record a step's end (and its start, when the caller measured it).

    A step that already ended ``ok`` keeps its first record, so a second run of
    a finished runbook changes nothing.
    """
    if outcome not in OUTCOMES - {"running"}:
        raise RunStateError(f"outcome must be one of ok, failed, held, skipped; got {outcome!r} for step {step}")
    if step_is_done(state, step) and outcome == "ok":
        return
    if started_at is not None:
        parse_time(started_at)  # a malformed stamp fails here, naming nothing half-written
    entry = state.setdefault("steps", {}).setdefault(step, {})
    if entry.get("outcome") != "running":  # step_start already counted a running attempt
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
    started = started_at or entry.get("started_at") or utc_now()
    ended = utc_now()
    entry.update(
        started_at=started,
        ended_at=ended,
        duration_s=seconds_between(started, ended),
        outcome=outcome,
        result=dict(result),
        message=message,
    )


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merge ``extra`` into ``base`` in place (dicts recursively; None deletes a key)."""
    for key, value in extra.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping):
            if not isinstance(base.get(key), dict):
                base[key] = {}
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def set_status(state: dict[str, Any], status: str, reason: str) -> None:
    if status not in STATUSES:
        raise RunStateError(f"status must be one of {', '.join(sorted(STATUSES))}; got {status!r}")
    state["status"] = status
    state["status_reason"] = reason
