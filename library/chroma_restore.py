#!/usr/bin/python
"""Ansible module: restore a verified chroma_snapshot (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_restore
short_description: Restore a Chroma server (or persist directory) from a verified snapshot
description:
  - "Verifies the snapshot at O(path) first: the manifest against its own checksum, then the size and
    SHA-256 of every file, record counts and embedding sizes. One changed byte and the restore is
    refused with the file named, before anything is written."
  - "Logical snapshot: recreates each collection on O(target) with its original configuration (HNSW space
    and parameters) and metadata, and loads it in batches of O(batch_size); the final counts are
    compared with the manifest. A same-named collection on the target is an error unless O(replace),
    which drops it first. O(collections) restores a subset."
  - "Physical snapshot: copies the persist directory into O(persist_dir) (the previous directory is kept
    next to it as C(NAME.pre-restore-TIME)); refused while a server answers on O(target.url) or holds
    the directory open."
  - "A restore is an action, not a state: the runbook calls it only when the source must be rebuilt.
    Run again without O(replace) it fails on the collections it created rather than duplicate them."
  - "O(mode=repair) is the rollback's last resort on the source: per collection of the snapshot it compares
    the live ids, documents and metadata with the snapshot. A collection that only lost records gets the
    missing ids added back (its id and other records stay); one that holds ids the snapshot lacks or records
    that differ (the source changed after the snapshot) is left alone and reported, unless
    O(restore_source); a collection that is gone (or, with O(restore_source), changed) is loaded into a
    temporary collection, verified, and only then swapped in by renaming (the replaced one is kept as
    C(<name>-before-restore-<time>)). An unusable snapshot is reported (C(checked=false)), not an error."
  - Check mode verifies the snapshot and the target and reports what would be restored, writing nothing.
version_added: "1.0.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.target
options:
  path:
    description: The snapshot directory (written by chroma_snapshot).
    type: path
    required: true
  target:
    description:
      - Connection dict of the server to restore into. Required for logical snapshots.
      - For physical snapshots its C(url), when given, must not answer.
    required: false
  collections:
    description: Only these collections of the snapshot. Default is all. A name not in the snapshot is an error.
    type: list
    elements: str
  replace:
    description: Drop same-named collections on the target before restoring them.
    type: bool
    default: false
  batch_size:
    description: Records per add request (capped by the server's maximum batch size).
    type: int
    default: 1000
  persist_dir:
    description: Destination persist directory for a physical snapshot.
    type: path
  mode:
    description:
      - C(restore) creates the snapshot's collections (O(replace) drops same-named ones first).
      - C(repair) compares the source with the snapshot and puts back only what it lost (see above).
    type: str
    choices: [restore, repair]
    default: restore
  restore_source:
    description: With O(mode=repair), restore whole collections that changed after the snapshot too (kept renamed).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Rebuild the source from the pre-migration snapshot
  chroma_restore:
    path: "{{ chroma_runs_dir }}/{{ run_id }}/snapshot"
    target: "{{ chroma_source }}"
    replace: true

- name: Put back what the source lost since the snapshot, never a newer write
  chroma_restore:
    path: "{{ chroma_runs_dir }}/{{ run_id }}/snapshot"
    target: "{{ chroma_source }}"
    mode: repair

- name: Verify a snapshot without touching anything
  chroma_restore:
    path: "{{ chroma_runs_dir }}/{{ run_id }}/snapshot"
    target: "{{ chroma_source }}"
    replace: true
  check_mode: true
"""

RETURN = r"""
snapshot_id:
  description: Id of the restored snapshot.
  returned: always
  type: str
verified_files:
  description: Files whose SHA-256 was checked.
  returned: always
  type: int
verified_bytes:
  description: Bytes checked.
  returned: always
  type: int
restored:
  description: Collection name to record count restored (in check mode, that would be restored).
  returned: logical snapshots
  type: dict
replaced:
  description: Collections that were (or would be) dropped first.
  returned: logical snapshots
  type: list
  elements: str
total_records:
  description: Records restored.
  returned: logical snapshots
  type: int
previous_moved_to:
  description: Where the previous persist directory was moved.
  returned: physical snapshots
  type: str
duration_seconds:
  description: Time the restore took.
  returned: logical snapshots
  type: float
message:
  description: One line for the operator.
  returned: always
  type: str
checked:
  description: With O(mode=repair), whether the snapshot was usable and the source compared with it.
  returned: mode repair
  type: bool
ok:
  description: With O(mode=repair), true when the source holds the snapshot (again), false when a collection was left alone, null when not checked.
  returned: mode repair
  type: bool
collections:
  description: With O(mode=repair), per collection C(live_count), C(not_in_snapshot), C(lost), C(differing), C(action), C(added), C(kept_as), C(note).
  returned: mode repair
  type: dict
added_back:
  description: With O(mode=repair), collection to number of missing ids added back.
  returned: mode repair
  type: dict
left_alone:
  description: With O(mode=repair), collections that changed after the snapshot and were not touched.
  returned: mode repair
  type: list
  elements: str
summary:
  description: With O(mode=repair), one line per collection that differed.
  returned: mode repair
  type: str
problem:
  description: With O(mode=repair), why the source could not be checked (empty when it was).
  returned: mode repair
  type: str
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.io.connection import ConnectionSpec, connect, connection_option
from ansible.module_utils.chroma_runbook.snapshot.manifest import SnapshotError, load_manifest
from ansible.module_utils.chroma_runbook.snapshot.physical_snapshot import restore_physical
from ansible.module_utils.chroma_runbook.snapshot.restore import RestoreFailed, RestoreRefused, restore_snapshot
from ansible.module_utils.chroma_runbook.snapshot.snapshot import SnapshotRefused
from ansible.module_utils.chroma_runbook.io.source import SourceRefused, require_current
from ansible.module_utils.chroma_runbook.snapshot.source_repair import repair_source

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "target": connection_option(required=False),
    "collections": {"type": "list", "elements": "str"},
    "replace": {"type": "bool", "default": False},
    "batch_size": {"type": "int", "default": 1000},
    "persist_dir": {"type": "path"},
    "mode": {"type": "str", "choices": ["restore", "repair"], "default": "restore"},
    "restore_source": {"type": "bool", "default": False},
}


def run_repair(module: AnsibleModule, path: Path) -> None:
    """mode=repair: compare and put back; an unusable snapshot is reported, never an error."""
    params = module.params
    if not params["target"]:
        module.fail_json(msg="mode=repair needs target (the source to compare with the snapshot)")
    try:
        source = ConnectionSpec.from_dict(params["target"], "target")
        require_current(source, "source to repair")
    except (SourceRefused, ValueError) as exc:  # not checkable: say so, never stop a rollback here
        problem = f"the source cannot be compared with the snapshot: {exc}"
        module.warn(problem)
        module.exit_json(changed=False, checked=False, ok=None, problem=problem, summary=problem, message=problem,
                         collections={}, added_back={}, restored=[], left_alone=[])
    try:
        client = connect(source)
        result = repair_source(client, path, params["collections"], params["restore_source"],
                               params["batch_size"], module.check_mode).as_dict()
    except (RestoreFailed, ValueError) as exc:
        module.fail_json(msg=f"repair of the source from {path} failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - client/IO errors: name them
        module.fail_json(msg=f"repair of the source from {path} failed: {type(exc).__name__}: {exc}")
    if not result["checked"] or result["left_alone"]:
        module.warn(result["summary"])
    module.exit_json(message=result["summary"], **result)


def run_module() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["batch_size"] < 1:
        module.fail_json(msg=f"batch_size must be >= 1, got {params['batch_size']}")
    path = Path(params["path"])
    if params["mode"] == "repair":
        run_repair(module, path)
    try:
        kind = load_manifest(path)["kind"]
        if kind == "physical":
            if not params["persist_dir"]:
                module.fail_json(msg=f"{path} is a physical snapshot: persist_dir is required")
            url = (params["target"] or {}).get("url")
            result = restore_physical(path, Path(params["persist_dir"]), url, module.check_mode).as_dict()
        else:
            if not params["target"]:
                module.fail_json(msg=f"{path} is a logical snapshot: target is required")
            target = ConnectionSpec.from_dict(params["target"], "target")
            require_current(target, "target of the restore")
            client = connect(target)
            result = restore_snapshot(client, path, params["collections"], params["replace"],
                                      params["batch_size"], module.check_mode).as_dict()
    except (SnapshotError, RestoreRefused, SnapshotRefused, SourceRefused, ValueError) as exc:
        module.fail_json(msg=f"restore refused, nothing written: {exc}")
    except RestoreFailed as exc:
        module.fail_json(msg=f"restore failed part-way: {exc}")
    except Exception as exc:  # noqa: BLE001 - client/IO errors: name them
        module.fail_json(msg=f"restore from {path} failed: {type(exc).__name__}: {exc}")
    if module.check_mode:
        result["changed"] = bool(result.get("restored")) or kind == "physical"
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
