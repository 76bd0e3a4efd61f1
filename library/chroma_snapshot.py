#!/usr/bin/python
"""Ansible module: verifiable snapshots of a Chroma server, and their retention (thin wrapper)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_snapshot
short_description: Take a verifiable snapshot of a Chroma server, or prune old snapshots
description:
  - "C(state=present), C(kind=logical): writes every collection of O(source) (or those in O(collections))
    to the directory O(path): per collection its configuration and metadata, the ids, documents and
    metadatas as JSON lines and the embeddings as little-endian float32 (count x dimension), read
    page by page with bounded memory. A C(manifest.json) records counts, dimensions, distance
    spaces, file sizes and the SHA-256 of every file, the chromadb version, the server (no secrets),
    the time and the snapshot id; C(manifest.json.sha256) protects the manifest itself."
  - "Everything is written in a hidden temporary directory next to O(path), fsync'd, and renamed into
    place only when complete: an interrupted snapshot never looks valid. Directories are 0700, files 0600."
  - "C(kind=physical): copies the persist directory O(persist_dir) of a stopped server, checksummed the
    same way. It is refused while a server answers on O(source.url) or while any process has a
    file of the directory open (a live copy can tear the HNSW index)."
  - "C(state=pruned): deletes snapshots under O(path) older than O(retention_days), never the newest and
    never one named in O(protect). Interrupted (temporary) snapshot directories past the retention
    period are removed too."
  - "Idempotent: if O(path) already holds a complete snapshot it is left alone (changed=false); if it holds
    anything else the module fails rather than overwrite it."
  - Check mode writes nothing and reports what would be written (or pruned).
version_added: "1.0.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.source
options:
  state:
    description: C(present) takes a snapshot; C(pruned) applies the retention policy under O(path).
    type: str
    choices: [present, pruned]
    default: present
  kind:
    description: C(logical) (through the API, server running) or C(physical) (persist directory, server stopped).
    type: str
    choices: [logical, physical]
    default: logical
  source:
    description:
      - Connection dict of the server to snapshot. Required for C(kind=logical).
      - For C(kind=physical) its C(url), when given, must not answer.
    required: false
  path:
    description:
      - "C(state=present): the snapshot directory to create (it must not exist, or hold a complete snapshot)."
      - "C(state=pruned): the directory whose snapshots (C(PATH/ID) or C(PATH/RUN/snapshot)) are pruned."
    type: path
    required: true
  collections:
    description: Only these collections (logical). Default is every collection. An unknown name is an error.
    type: list
    elements: str
  page_size:
    description: Records read per request (logical).
    type: int
    default: 1000
  snapshot_id:
    description: Id recorded in the manifest. Default C(snap-<UTC time>-<random>).
    type: str
  fingerprint:
    description:
      - Also return C(fingerprint), the same as M(chroma_info) C(fingerprint=true) returns, taken from the pages
        the snapshot writes (logical, one read of the source instead of two). Not returned when a complete
        snapshot was already at O(path).
    type: bool
    default: false
  persist_dir:
    description: The persist directory to copy (C(kind=physical)).
    type: path
  retention_days:
    description: C(state=pruned) deletes snapshots older than this many days (the seed keeps them 7 days).
    type: float
    default: 7
  protect:
    description:
      - Snapshot paths, run directories holding them, or snapshot ids that must never be pruned
        (the runbook passes the snapshots of unfinished runs).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Snapshot the source before migrating (runbook step 2)
  chroma_snapshot:
    source: "{{ chroma_source }}"
    path: "{{ chroma_runs_dir }}/{{ run_id }}/snapshot"
    snapshot_id: "pre-migration-{{ run_id }}"
  register: snapshot

- name: Physical copy of the stopped source's persist directory
  chroma_snapshot:
    kind: physical
    persist_dir: /var/lib/chroma
    source: {url: "http://127.0.0.1:8001"}
    path: "{{ chroma_runs_dir }}/{{ run_id }}/snapshot-physical"

- name: Keep snapshots 7 days, never those of unfinished runs
  chroma_snapshot:
    state: pruned
    path: "{{ chroma_runs_dir }}"
    retention_days: 7
    protect: "{{ unfinished_run_dirs }}"
"""

RETURN = r"""
path:
  description: The snapshot directory (or the pruned root).
  returned: always
  type: str
snapshot_id:
  description: Id of the snapshot written or found (empty in check mode).
  returned: state=present
  type: str
collections:
  description: Collection name to record count (logical).
  returned: state=present
  type: dict
  sample: {"openwebui_core": 3000}
total_records:
  description: Records in the snapshot.
  returned: state=present
  type: int
total_bytes:
  description: Bytes written (in check mode, the estimated size of the embeddings or of the persist directory).
  returned: state=present
  type: int
duration_seconds:
  description: Time the snapshot took.
  returned: state=present
  type: float
pruned:
  description: Snapshot directories deleted (or that would be, in check mode).
  returned: state=pruned
  type: list
  elements: str
kept:
  description: Snapshot directory to the reason it was kept.
  returned: state=pruned
  type: dict
fingerprint:
  description: Per collection its count and a SHA-256 of its records, the overall SHA-256 and the scope (as M(chroma_info) returns it).
  returned: when fingerprint=true and a logical snapshot was written
  type: dict
message:
  description: One line for the operator.
  returned: always
  type: str
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.io.connection import ConnectionSpec, connection_option
from ansible.module_utils.chroma_runbook.snapshot.manifest import SnapshotError
from ansible.module_utils.chroma_runbook.snapshot.physical_snapshot import plan_physical_snapshot, take_physical_snapshot
from ansible.module_utils.chroma_runbook.snapshot.retention import prune
from ansible.module_utils.chroma_runbook.snapshot.snapshot import SnapshotRefused, plan_snapshot, take_snapshot
from ansible.module_utils.chroma_runbook.io.source import SourceRefused, open_source

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["present", "pruned"], "default": "present"},
    "kind": {"type": "str", "choices": ["logical", "physical"], "default": "logical"},
    "source": connection_option(required=False),
    "path": {"type": "path", "required": True},
    "collections": {"type": "list", "elements": "str"},
    "page_size": {"type": "int", "default": 1000},
    "snapshot_id": {"type": "str"},
    "fingerprint": {"type": "bool", "default": False},
    "persist_dir": {"type": "path"},
    "retention_days": {"type": "float", "default": 7},
    "protect": {"type": "list", "elements": "str", "default": []},
}


def _logical(module: AnsibleModule) -> dict:
    params = module.params
    if not params["source"]:
        module.fail_json(msg="source is required for kind=logical")
    if params["page_size"] < 1:
        module.fail_json(msg=f"page_size must be >= 1, got {params['page_size']}")
    spec = ConnectionSpec.from_dict(params["source"], "source")
    client = open_source(spec)
    dest = Path(params["path"])
    if module.check_mode:
        return plan_snapshot(client, dest, params["collections"]).as_dict()
    return take_snapshot(client, dest, params["collections"], params["page_size"], spec.describe(),
                         params["snapshot_id"], params["fingerprint"]).as_dict()


def _physical(module: AnsibleModule) -> dict:
    params = module.params
    if not params["persist_dir"]:
        module.fail_json(msg="persist_dir is required for kind=physical")
    url = (params["source"] or {}).get("url")
    dest = Path(params["path"])
    if module.check_mode:
        return plan_physical_snapshot(Path(params["persist_dir"]), dest, url).as_dict()
    return take_physical_snapshot(Path(params["persist_dir"]), dest, url, params["snapshot_id"]).as_dict()


def run_module() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        if params["state"] == "pruned":
            if params["retention_days"] < 0:
                module.fail_json(msg=f"retention_days must be >= 0, got {params['retention_days']}")
            result = prune(Path(params["path"]), params["retention_days"], params["protect"], module.check_mode)
            result["path"] = params["path"]
        elif params["kind"] == "logical":
            result = _logical(module)
        else:
            result = _physical(module)
    except (SnapshotRefused, SnapshotError, SourceRefused, ValueError) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # noqa: BLE001 - client/IO errors: report them, the temp dir is already gone
        module.fail_json(msg=f"snapshot to {params['path']} failed: {type(exc).__name__}: {exc}")
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
