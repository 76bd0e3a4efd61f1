#!/usr/bin/python
"""Ansible module: what a run wrote to the target, and dropping exactly that (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_run_target
short_description: The target collections a run created, writes that reached them later, and their removal
description:
  - "C(action=inspect) reads the run directory (the checkpoint first, state.json as a fallback) and the
    target: the collections the run created with the ids it recorded, the records it wrote per
    collection, and per collection how the target now differs from that (writes after a cutover).
    A truncated checkpoint or a corrupt state.json is reported in C(problems), never an error."
  - "C(action=drop) drops the collections the run created whose live id equals the recorded id, and the
    run's staging collections (C(staging-<sha1(run_id)[:10]>-<target>)). A collection with another id,
    or one the run merged into, is never dropped. Works from the checkpoint alone (after a crash)."
  - "C(action=leftovers) finds collections that an earlier, rolled-back run created and kept (recorded
    with their id and count when it was rolled back) and that nobody touched since (same id, same
    count); with O(drop) they are dropped so the next migration replaces them."
  - Check mode reports what would be dropped and drops nothing.
version_added: "1.0.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.target
options:
  action:
    description: What to do.
    type: str
    choices: [inspect, drop, leftovers]
    default: inspect
  runs_dir:
    description: Directory of the runs.
    type: path
    required: true
  run_id:
    description: The run (required for inspect and drop; for leftovers, a run to leave out).
    type: str
    default: ""
  known:
    description: With inspect, names on the target before the run (not counted as writes after the cutover).
    type: list
    elements: str
    default: []
  drop:
    description: With leftovers, drop what was found.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: What the run wrote to the target and what changed there since
  chroma_run_target:
    runs_dir: "{{ chroma_runs_dir }}"
    run_id: "{{ run_id }}"
    target: "{{ chroma_target }}"
  register: written

- name: Drop exactly the collections this run created
  chroma_run_target:
    action: drop
    runs_dir: "{{ chroma_runs_dir }}"
    run_id: "{{ run_id }}"
    target: "{{ chroma_target }}"
"""

RETURN = r"""
created:
  description: Collection name to the id the run recorded when it created it (null when no id is known).
  returned: inspect, drop
  type: dict
expected:
  description: Per collection, the records the run wrote (plus what a merge found there).
  returned: inspect, drop
  type: dict
phase:
  description: The checkpoint's phase (empty when there is no readable checkpoint).
  returned: inspect, drop
  type: str
problems:
  description: What could not be read or checked in the run directory.
  returned: inspect, drop
  type: list
  elements: str
surplus:
  description: "Per collection whose count differs from what the run wrote: C(recorded), C(live), C(difference)."
  returned: inspect
  type: dict
changes:
  description: "One line per collection in C(surplus), e.g. C(openwebui_core: 3003 records, the migration wrote 3000 (+3))."
  returned: inspect
  type: list
  elements: str
target_reachable:
  description: Whether the target could be read (inspect reports an unreachable target in C(problems)).
  returned: inspect
  type: bool
own_copies:
  description: "The created collections still carrying the recorded id: C(id) and C(count)."
  returned: inspect, drop
  type: dict
dropped:
  description: Collections dropped (or, in check mode, that would be).
  returned: drop
  type: list
  elements: str
dropped_staging:
  description: Staging collections of the run dropped.
  returned: drop
  type: list
  elements: str
kept:
  description: Collections the run recorded but did not drop, with the reason.
  returned: drop
  type: dict
leftovers:
  description: "For leftovers, name to C(run_id), C(id), C(count) of the rolled-back run's untouched copy."
  returned: leftovers
  type: dict
"""

from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.io.connection import ConnectionSpec, connect, connection_option
from ansible.module_utils.chroma_runbook.run import run_target as rt

ARGUMENT_SPEC = {
    "action": {"type": "str", "choices": ["inspect", "drop", "leftovers"], "default": "inspect"},
    "runs_dir": {"type": "path", "required": True},
    "run_id": {"type": "str", "default": ""},
    "target": connection_option(),
    "known": {"type": "list", "elements": "str", "default": []},
    "drop": {"type": "bool", "default": False},
}


def run_action(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    runs_dir = Path(p["runs_dir"])

    def client() -> Any:
        return connect(ConnectionSpec.from_dict(p["target"], "target"))

    if p["action"] == "leftovers":
        live = client()
        found = rt.leftovers(live, runs_dir, p["run_id"])
        dropped = rt.drop_leftovers(live, found, module.check_mode) if p["drop"] else []
        return {"changed": bool(dropped), "leftovers": found, "dropped": dropped}
    if not p["run_id"]:
        module.fail_json(msg=f"run_id is required for action={p['action']}")
    records = rt.read_run(runs_dir / p["run_id"], p["run_id"])
    out: dict[str, Any] = {"created": records.created, "expected": records.expected, "phase": records.phase,
                           "problems": records.problems, "own_copies": {}, "surplus": {}, "changes": [], "target_reachable": True}
    if p["action"] == "inspect":
        try:  # a dead target must not stop a rollback: say it could not be checked
            live = client()
            out.update(own_copies=rt.own_copies(live, records),
                       surplus=rt.surplus_after_cutover(live, records, p["known"]))
            out["changes"] = [f"{name}: {d['live']} records, the migration wrote {d['recorded']} ({d['difference']:+d})"
                              for name, d in sorted(out["surplus"].items())]
        except Exception as exc:  # noqa: BLE001 - connection and client errors alike
            out["target_reachable"] = False
            out["problems"] = records.problems + [f"the target could not be read ({type(exc).__name__}: {exc})"]
        out["changed"] = False
        return out
    live = client()
    out["own_copies"] = rt.own_copies(live, records)
    done = rt.drop_own(live, records, module.check_mode)
    out.update(done, changed=bool(done["dropped"] or done["dropped_staging"]))
    if not module.check_mode:
        out["own_copies"] = {k: v for k, v in out["own_copies"].items() if k not in done["dropped"]}
    return out


def run_module() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run_action(module)
    except Exception as exc:  # noqa: BLE001 - client/IO errors: name them
        module.fail_json(msg=f"chroma_run_target {module.params['action']} on run {module.params['run_id'] or '-'} "
                             f"failed: {type(exc).__name__}: {exc}")
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
