#!/usr/bin/python
"""Ansible module: a runbook run's id, directory and state file (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_run
short_description: Open, find and update a chroma-runbook run (id, directory, state.json, JSON-lines log)
description:
  - A run lives in C(<runs_dir>/<run_id>/) with C(state.json) (each step's start, end and outcome, and
    facts the rollback needs), C(checkpoint/), C(snapshot/), C(backups/), C(reports/) and C(run.log.jsonl).
    C(<runs_dir>/latest) points at the newest run.
  - C(action=open) finds or creates the run. Without C(run_id) it reuses the latest run when its status is
    C(running), C(stopped) or C(complete) (a second migrate.yml resumes or confirms it), else starts a new one.
  - C(action=find) returns an existing run (C(run_id) or the latest) and fails clearly when there is none.
  - C(action=step_start)/C(step_end) record a step (each role records its own). C(step_start) stamps C(started_at)
    (a new attempt); C(step_end) stamps C(ended_at) and measures C(duration_s) from the recorded start. A step that
    already ended C(ok) keeps its first record (and its O(stamp) is not applied again), so re-running a finished
    runbook changes nothing; C(done) tells the caller it may skip the work.
  - C(action=update) merges C(data) into the state's C(data) and may set C(status).
  - C(action=clock) returns the engine's clock (C(now), the format of every time in the state) and, with C(since),
    the seconds elapsed; it reads and writes nothing. Roles never build timestamps themselves.
  - C(action=list) returns every run with its status (oldest first), e.g. to protect unfinished runs' snapshots.
  - C(action=summary) returns step timings, the write-freeze window and the figures against C(limits).
  - C(action=lock_status) tries, without blocking, the migration lock of C(target) (C(<runs_dir>/locks/migrate-<key>.lock),
    the file chroma_migrate takes with C(lock_dir=<runs_dir>/locks)) and, with C(run_id), the run's own
    C(checkpoint/migrate.lock); it returns whether a live process holds one and who (C(pid), C(host), C(run_id)).
    It creates nothing. The rollback refuses while a lock is held.
  - C(action=paths) returns the names the engine gives things, so roles never rebuild them; the run's
    C(paths) (with C(run_id), the checkpoint file, staging-collection prefix, directories) and C(freeze_files).
    It reads and writes nothing.
  - C(action=keep_backup) makes a config file's backup, fetched into the run, private (the file 0600, its
    directory 0700) and writes C(<backup_file>.meta.json) beside it with C(data) (the original C(path), C(mode),
    C(owner), C(group), which the rollback puts back). It fails when the backup is missing.
  - Check mode writes nothing and reports what would change.
version_added: "1.0.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.target
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [open, find, list, step_start, step_end, update, clock, summary, lock_status, paths, keep_backup]
  runs_dir:
    description: Directory holding one sub-directory per run.
    type: path
    required: true
  run_id:
    description:
      - The run. For C(open) and C(find), empty means the latest (C(open) creates a new one when the latest is
        not reusable). Required for the other actions.
    type: str
  reuse:
    description: For C(open), reuse the latest reusable run when no C(run_id) is given.
    type: bool
    default: true
  known_only:
    description:
      - For C(open) with a C(run_id), only open a run that exists; an unknown id fails before anything is created
        (every playbook but migrate.yml, which is the one that starts named runs).
    type: bool
    default: false
  label:
    description: For C(open), a free text stored with a new run (e.g. the playbook).
    type: str
    default: ""
  step:
    description: Step name for C(step_start) and C(step_end).
    type: str
  outcome:
    description: For C(step_end); C(held) is a step stopped for the operator's decision (the gate on a WARNING).
    type: str
    choices: [ok, failed, held, skipped]
    default: ok
  result:
    description: For C(step_end), what the step found or did (stored in the state).
    type: dict
    default: {}
  message:
    description: For C(step_end) and C(update), one line for a human.
    type: str
    default: ""
  data:
    description: For C(update) and C(step_end), merged into the state's C(data) (dicts recursively; a null value deletes a key).
    type: dict
    default: {}
  status:
    description: For C(update) and C(step_end), the run's new status.
    type: str
    choices: [running, stopped, complete, failed, rolled_back, rollback_failed]
  stamp:
    description:
      - For C(update) and C(step_end), keys of the state's C(data) set to the engine's clock when the state is written
        (after C(data) is merged), e.g. C(freeze.frozen_at). A key is a dotted path, or a list of keys (a key holding a dot,
        such as a host name).
    type: list
    elements: raw
    default: []
  since:
    description: For C(clock), an ISO-8601 UTC time; C(elapsed_s) is the seconds from it to now.
    type: str
  summary_path:
    description: For C(summary), also write the summary as JSON there (only when it differs).
    type: path
  backup_file:
    description: For C(keep_backup) (required there), the backup of a config file inside the run directory.
    type: path
  limits:
    description: For C(summary), seconds each figure should stay within (C(migration_s), C(write_freeze_s),
      C(rollback_to_service_s)).
    type: dict
    default: {}
  target:
    description:
      - For C(lock_status), the connection dict of the target whose migration lock is tried (its C(url) without
        credentials, or C(path), with C(tenant) and C(database), make the lock's key; nothing is sent to it).
    type: dict
    required: false
  tolerate_damage:
    description:
      - "For recovery. With C(find), a state file that cannot be read gives a blank state (status
        C(unreadable)) and C(problems) instead of an error. With C(update) and C(step_end), such a file is
        kept as C(state.json.damaged-<time>) and a blank state is written before the change."
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Open this run (reuse the latest unfinished one)
  chroma_run:
    action: open
    runs_dir: "{{ chroma_runs_dir }}"
    run_id: "{{ run_id | default(omit) }}"
  register: run

- name: Record the snapshot step's start
  chroma_run:
    action: step_start
    runs_dir: "{{ chroma_runs_dir }}"
    run_id: "{{ run.run_id }}"
    step: snapshot
  register: step

- name: Ask the engine for the run's checkpoint file and staging prefix
  chroma_run:
    action: paths
    runs_dir: "{{ chroma_runs_dir }}"
    run_id: "{{ run.run_id }}"
  register: names

- name: Record the snapshot step's end (its duration measured from the recorded start)
  chroma_run:
    action: step_end
    runs_dir: "{{ chroma_runs_dir }}"
    run_id: "{{ run.run_id }}"
    step: snapshot
    outcome: ok
    result: {manifest: /runs/x/snapshot/manifest.json}

- name: Record when writes were frozen (the engine's clock, not the caller's)
  chroma_run:
    action: update
    runs_dir: "{{ chroma_runs_dir }}"
    run_id: "{{ run.run_id }}"
    data: {freeze: {method: proxy}}
    stamp: [freeze.frozen_at]

- name: Read the engine's clock and the seconds since a start
  chroma_run:
    action: clock
    runs_dir: "{{ chroma_runs_dir }}"
    since: "{{ started.now }}"
  register: restored
"""

RETURN = r"""
run_id:
  description: The run's id.
  returned: always
  type: str
  sample: 20261121T170102Z-3f2a
paths:
  description: C(run_dir), C(state_file), C(log_file), C(rejects_file), C(checkpoint_dir), C(snapshot_dir),
    C(backups_dir), C(reports_dir), C(checkpoint_file) (chroma_migrate's checkpoint) and C(staging_prefix)
    (the prefix of this run's staging collections on the target).
  returned: always (for C(paths), when O(run_id) is given)
  type: dict
freeze_files:
  description: For C(paths), the file names the proxy freeze writes, C(map) (nginx http level) and C(gate)
    (front-door server).
  returned: when action is paths
  type: dict
  sample: {"map": "chroma_runbook_freeze_map.conf", "gate": "chroma_runbook_freeze_gate.conf"}
state:
  description: The run's state after the action.
  returned: always
  type: dict
created:
  description: For C(open), a new run was started.
  returned: when action is open
  type: bool
reused:
  description: For C(open), an existing run was picked up again.
  returned: when action is open
  type: bool
done:
  description: For C(step_start), the step already ended C(ok) in this run.
  returned: when action is step_start
  type: bool
problems:
  description: For C(find), what could not be read (only with O(tolerate_damage); else empty).
  returned: when action is find
  type: list
  elements: str
damaged_state_kept_as:
  description: With O(tolerate_damage), where an unreadable state file was moved.
  returned: when a damaged state file was set aside
  type: str
previous:
  description: For C(step_start), the step's record before this call (empty when new).
  returned: when action is step_start
  type: dict
summary:
  description: For C(summary), C(steps) (timings), C(freeze) (window), C(figures), C(within_limits), C(lines).
  returned: when action is summary
  type: dict
runs:
  description: For C(list), every run (C(run_id), C(status), C(created_at), C(run_dir)), oldest first.
  returned: when action is list
  type: list
  elements: dict
lock:
  description: For C(lock_status), C(held) (a live process holds the lock), C(holder) (C(pid), C(host), C(run_id),
    C(since), C(cmdline)), C(path) (the lock file held, else the target's lock file) and C(checked) (every file tried).
  returned: when action is lock_status
  type: dict
  sample: {"held": true, "holder": {"pid": 4242, "host": "ctl-1", "run_id": "r1"}, "path": "/runs/locks/migrate-3f2a.lock"}
meta_file:
  description: For C(keep_backup), the record of the config file's path, mode and owner beside the backup.
  returned: when action is keep_backup
  type: str
now:
  description: For C(clock), the engine's clock (ISO-8601 UTC with milliseconds).
  returned: when action is clock
  type: str
  sample: "2026-11-21T17:01:02.345Z"
elapsed_s:
  description: For C(clock) with O(since), the seconds from O(since) to RV(now).
  returned: when action is clock and since is given
  type: float
"""

from pathlib import Path
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.run import run_state as rs
from ansible.module_utils.chroma_runbook.io.connection import ConnectionError_, ConnectionSpec, connection_option
from ansible.module_utils.chroma_runbook.run.backups import keep_backup, meta_path
from ansible.module_utils.chroma_runbook.run.names import FREEZE_FILES
from ansible.module_utils.chroma_runbook.run.run_lock import LOCK_NAME, lock_status, target_lock_path
from ansible.module_utils.chroma_runbook.run.run_summary import render_lines, summarize

NEEDS_RUN_ID = ("step_start", "step_end", "update", "summary")
NEEDS_STEP = ("step_start", "step_end")
# the argument spec refuses an action without the options it needs
REQUIRED_IF = [("action", action, ("run_id",)) for action in NEEDS_RUN_ID] + [
    ("action", action, ("step",)) for action in NEEDS_STEP] + [("action", "keep_backup", ("backup_file",))]


def do_open(module: AnsibleModule, runs_dir: Path, write: bool) -> dict[str, Any]:
    p = module.params
    if p["run_id"]:
        rs.validate_run_id(p["run_id"])  # before anything is created (the same rule as chroma_migrate's)
        if p["known_only"]:
            rs.find_run(runs_dir, p["run_id"])  # an unknown run fails here, naming the known ones
    if write:
        runs_dir.mkdir(parents=True, exist_ok=True)
    opened = rs.open_run(runs_dir, p["run_id"] or None, p["reuse"], p["label"], write)
    rs.append_event(opened.paths, "run_open", write, reused=opened.reused, created=opened.created)
    return dict(
        changed=opened.changed, run_id=opened.paths.run_id, paths=opened.paths.as_dict(),
        state=opened.state, created=opened.created, reused=opened.reused,
    )


def do_step(module: AnsibleModule, paths: rs.RunPaths, write: bool) -> dict[str, Any]:
    p = module.params
    step = p["step"]
    if p["action"] == "step_start":
        previous: dict[str, Any] = {}

        def change(state: dict[str, Any]) -> None:
            previous.update(state.get("steps", {}).get(step) or {})
            rs.start_step(state, step)

        changed, state = mutate_state_or_fail(module, paths, change, write)
        done = rs.step_is_done(state, step)
        rs.append_event(paths, "step_skipped" if done else "step_start", write, step=step)
        return dict(changed=changed, state=state, done=done, previous=previous)

    def finish(state: dict[str, Any]) -> None:
        kept = rs.step_is_done(state, step) and p["outcome"] == "ok"  # its first record and times stay
        rs.end_step(state, step, p["outcome"], p["result"], p["message"])
        rs.deep_merge(state.setdefault("data", {}), p["data"])
        if not kept:
            stamp_data(state, p["stamp"])
        if p["status"]:
            rs.set_status(state, p["status"], p["message"])

    changed, state = mutate_state_or_fail(module, paths, finish, write)
    if changed:
        rs.append_event(paths, "step_end", write, step=step, outcome=p["outcome"], message=p["message"])
    return dict(changed=changed, state=state)


def do_update(module: AnsibleModule, paths: rs.RunPaths, write: bool) -> dict[str, Any]:
    p = module.params

    def change(state: dict[str, Any]) -> None:
        rs.deep_merge(state.setdefault("data", {}), p["data"])
        stamp_data(state, p["stamp"])
        if p["status"]:
            rs.set_status(state, p["status"], p["message"])

    changed, state = mutate_state_or_fail(module, paths, change, write)
    if changed and p["status"]:
        rs.append_event(paths, "run_status", write, status=p["status"], message=p["message"])
    return dict(changed=changed, state=state)


def stamp_data(state: dict[str, Any], keys: list[Any]) -> None:
    """Set each key of the state's data (a dotted path, or a list of keys) to the engine's clock."""
    now = rs.utc_now()
    for key in keys:
        path = [str(part) for part in key] if isinstance(key, list) else str(key).split(".")
        if not path or not all(path):
            raise rs.RunStateError(f"stamp: {key!r} is not a key of the state's data (a dotted path or a list of keys)")
        node = state.setdefault("data", {})
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = now


def do_clock(since: Optional[str]) -> dict[str, Any]:
    """The engine's clock (read-only): now, and the seconds since ``since``."""
    now = rs.utc_now()
    result: dict[str, Any] = dict(changed=False, now=now)
    if since:
        try:
            result["elapsed_s"] = rs.seconds_between(since, now)
        except ValueError as exc:
            raise rs.RunStateError(f"since: {since!r} is not an ISO-8601 time ({exc})") from exc
    return result


def do_lock_status(module: AnsibleModule, runs_dir: Path) -> dict[str, Any]:
    """Is a migration still writing (into this target, or in this run)? Tried without blocking."""
    p = module.params
    paths = []
    if p["target"]:
        try:
            spec = ConnectionSpec.from_dict(p["target"], "target")
        except ConnectionError_ as exc:
            module.fail_json(msg=str(exc))
        paths.append(target_lock_path(str(runs_dir / "locks"), spec))
    if p["run_id"]:
        paths.append(str(rs.RunPaths(runs_dir, rs.validate_run_id(p["run_id"])).run_dir / "checkpoint" / LOCK_NAME))
    if not paths:
        module.fail_json(msg="action=lock_status needs target (the target's lock) or run_id (the run's lock)")
    found = [lock_status(path) for path in paths]
    held = next((status for status in found if status["held"]), found[0])
    return dict(changed=False, lock=dict(held, checked=paths))


def do_paths(runs_dir: Path, run_id: Optional[str]) -> dict[str, Any]:
    """The engine's names (read-only): the run's paths when ``run_id`` is given, the freeze files."""
    result: dict[str, Any] = dict(changed=False, freeze_files=dict(FREEZE_FILES))
    if run_id:
        paths = rs.RunPaths(runs_dir, rs.validate_run_id(run_id))
        result.update(run_id=paths.run_id, paths=paths.as_dict())
    return result


def do_keep_backup(module: AnsibleModule, write: bool) -> dict[str, Any]:
    """A fetched config backup made private, its meta record (mode, owner) beside it."""
    backup = Path(module.params["backup_file"])
    try:
        changed = keep_backup(backup, module.params["data"], write)
    except OSError as exc:
        module.fail_json(msg=f"cannot keep the backup {backup}: {exc}")
    return dict(changed=changed, backup_file=str(backup), meta_file=str(meta_path(backup)))


def mutate_state_or_fail(module: AnsibleModule, paths: rs.RunPaths, change: Any, write: bool) -> Any:
    try:
        return rs.mutate_state(paths, change, write)
    except rs.RunStateError as exc:
        module.fail_json(msg=str(exc), run_id=paths.run_id)


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "required": True,
                       "choices": ["open", "find", "list", "step_start", "step_end", "update", "clock", "summary",
                                   "lock_status", "paths", "keep_backup"]},
            "runs_dir": {"type": "path", "required": True},
            "run_id": {"type": "str"},
            "reuse": {"type": "bool", "default": True},
            "known_only": {"type": "bool", "default": False},
            "label": {"type": "str", "default": ""},
            "step": {"type": "str"},
            "outcome": {"type": "str", "choices": ["ok", "failed", "held", "skipped"], "default": "ok"},
            "result": {"type": "dict", "default": {}},
            "message": {"type": "str", "default": ""},
            "data": {"type": "dict", "default": {}},
            "status": {"type": "str",
                       "choices": ["running", "stopped", "complete", "failed", "rolled_back", "rollback_failed"]},
            "stamp": {"type": "list", "elements": "raw", "default": []},
            "since": {"type": "str"},
            "limits": {"type": "dict", "default": {}},
            "summary_path": {"type": "path"},
            "backup_file": {"type": "path"},
            "target": connection_option(required=False),
            "tolerate_damage": {"type": "bool", "default": False},
        },
        required_if=REQUIRED_IF,
        supports_check_mode=True,
    )
    p = module.params
    runs_dir = Path(p["runs_dir"])
    write = not module.check_mode
    action = p["action"]
    try:
        if action == "open":
            module.exit_json(**do_open(module, runs_dir, write))
        if action == "lock_status":
            module.exit_json(**do_lock_status(module, runs_dir))
        if action == "list":
            module.exit_json(changed=False, runs=rs.describe_runs(runs_dir))
        if action == "paths":
            module.exit_json(**do_paths(runs_dir, p["run_id"]))
        if action == "clock":
            module.exit_json(**do_clock(p["since"]))
        if action == "keep_backup":
            module.exit_json(**do_keep_backup(module, write))
        if action == "find" and p["tolerate_damage"]:
            paths, state, problems = rs.find_run_tolerant(runs_dir, p["run_id"] or None)
            module.exit_json(changed=False, run_id=paths.run_id, paths=paths.as_dict(), state=state, problems=problems)
        if action == "find":
            paths, state = rs.find_run(runs_dir, p["run_id"] or None)
            module.exit_json(changed=False, run_id=paths.run_id, paths=paths.as_dict(), state=state, problems=[])
        paths = rs.RunPaths(runs_dir, rs.validate_run_id(p["run_id"]))
        set_aside = None
        if p["tolerate_damage"] and action in ("update", "step_end") and write and paths.run_dir.is_dir():
            set_aside = rs.set_aside_unreadable(paths)
        if action in NEEDS_STEP:
            result = do_step(module, paths, write)
        elif action == "update":
            result = do_update(module, paths, write)
        else:
            state = rs.read_state(paths) or rs.empty_state(paths.run_id)
            summary = summarize(state, p["limits"])
            summary["lines"] = render_lines(summary)
            changed = bool(p["summary_path"]) and rs.write_json_if_changed(Path(p["summary_path"]), summary, write)
            result = dict(changed=changed, summary=summary, state=state)
    except rs.RunStateError as exc:
        module.fail_json(msg=str(exc))
    if set_aside:
        result.update(changed=True, damaged_state_kept_as=set_aside)
    module.exit_json(run_id=paths.run_id, paths=paths.as_dict(), **result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
