#!/usr/bin/python
"""Ansible module: what a Chroma server holds (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_info
short_description: Collections, counts and configuration of a Chroma server
description:
  - Lists the collections of one tenant/database of a Chroma 1.x server with their record counts,
    metadata and configuration (HNSW space and parameters).
  - Optionally compares the counts with expected counts within a tolerance (runbook step 1.2) and
    returns the comparison; it never fails because of a mismatch, the caller decides.
  - Read-only; safe in check mode (it runs and reports the same facts).
version_added: "1.0.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.server
options:
  collections:
    description:
      - Only these collections. A listed collection that does not exist is reported with count C(-1).
      - Default is every collection of the database.
    type: list
    elements: str
  expected_counts:
    description:
      - Collection name to expected record count. When given, C(count_check) is returned.
    type: dict
  tolerance:
    description:
      - How many records the total (and each collection) may differ from C(expected_counts).
    type: int
    default: 0
  with_configuration:
    description: Also return each collection's configuration.
    type: bool
    default: true
  fingerprint:
    description:
      - Also read every record and return C(fingerprint) (per collection its count and a SHA-256 of its records'
        ids, documents, metadata and embeddings). It reads the whole database, like a snapshot.
    type: bool
    default: false
  expected_fingerprint:
    description:
      - A C(fingerprint) returned earlier. When given, the fingerprint is taken and C(drift) lists each collection
        created, dropped or written to since. The module never fails because of a drift; the caller decides.
    type: dict
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the source's collections and compare them with the expected counts
  chroma_info:
    server: "{{ chroma_source }}"
    expected_counts:
      openwebui_core: 3000
      openwebui_docs: 2100
    tolerance: 5
  register: source_info

- name: Stop when a collection is missing or off
  ansible.builtin.assert:
    that: source_info.count_check.ok
    fail_msg: "{{ source_info.count_check.summary }}"
"""

RETURN = r"""
server:
  description: The server as a secret-free label.
  returned: always
  type: str
  sample: http://127.0.0.1:8001
heartbeat_ns:
  description: The server's heartbeat (nanoseconds) when it was read.
  returned: always
  type: int
total:
  description: Sum of the counts of the returned collections (missing ones excluded).
  returned: always
  type: int
  sample: 9832
collection_names:
  description: Sorted collection names.
  returned: always
  type: list
  elements: str
counts:
  description: Collection name to count (C(-1) when a requested collection does not exist).
  returned: always
  type: dict
  sample: {"openwebui_core": 3000}
vector_bytes:
  description: Bytes of float32 vectors the returned collections hold (count x dimension x 4).
  returned: always
  type: int
collections:
  description: Collection name to C(name), C(id), C(count), C(metadata), C(configuration), C(dimension).
  returned: always
  type: dict
count_check:
  description: Comparison with C(expected_counts).
  returned: when expected_counts is given
  type: dict
  contains:
    ok:
      description: Every expected collection exists and the counts are within the tolerance.
      type: bool
    expected_total:
      description: Sum of the expected counts.
      type: int
    actual_total:
      description: Sum of the actual counts of the expected collections.
      type: int
    mismatches:
      description: Collection name to C(expected) and C(actual) where they differ by more than the tolerance.
      type: dict
    missing:
      description: Expected collections that do not exist.
      type: list
      elements: str
    unexpected:
      description: Collections that exist but were not expected.
      type: list
      elements: str
    summary:
      description: One line for an operator.
      type: str
fingerprint:
  description: C(collections) (name to C(count) and C(sha256)) and C(sha256) of them all.
  returned: when fingerprint or expected_fingerprint is given
  type: dict
drift:
  description: Collections whose fingerprint differs from O(expected_fingerprint) (C(collection), C(what), C(expected), C(actual)).
  returned: when expected_fingerprint is given
  type: list
  elements: dict
"""

from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.io.connection import ConnectionError_, ConnectionSpec, connection_option
from ansible.module_utils.chroma_runbook.io.fingerprint import drift, take_fingerprint
from ansible.module_utils.chroma_runbook.io.server_inventory import compare_counts, read_inventory
from ansible.module_utils.chroma_runbook.io.source import open_source


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "server": connection_option(),
            "collections": {"type": "list", "elements": "str"},
            "expected_counts": {"type": "dict"},
            "tolerance": {"type": "int", "default": 0},
            "with_configuration": {"type": "bool", "default": True},
            "fingerprint": {"type": "bool", "default": False},
            "expected_fingerprint": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["tolerance"] < 0:
        module.fail_json(msg=f"tolerance must be >= 0, got {params['tolerance']}")
    expected = params["expected_counts"]
    if expected is not None:
        bad = {k: v for k, v in expected.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0}
        if bad:
            module.fail_json(msg=f"expected_counts values must be integers >= 0; wrong: {bad}")
    try:
        spec = ConnectionSpec.from_dict(params["server"], "server")
    except ConnectionError_ as exc:
        module.fail_json(msg=str(exc))
    names = params["collections"]
    try:
        inventory = read_inventory(spec, names, params["with_configuration"])
    except Exception as exc:  # noqa: BLE001 - any client error means the server cannot be read
        module.fail_json(msg=f"cannot read collections of {spec.describe()}: {type(exc).__name__}: {exc}")
    result = dict(changed=False, **inventory.as_dict())
    if expected is not None:
        actual = inventory.counts()
        if names is None:
            actual.update({n: -1 for n in expected if n not in actual})
        check = compare_counts(actual, expected, params["tolerance"])
        result["count_check"] = dict(check.as_dict(), summary=check.describe())
    if params["fingerprint"] or params["expected_fingerprint"] is not None:
        result.update(fingerprint_result(module, spec, names, params["expected_fingerprint"]))
    module.exit_json(**result)


def fingerprint_result(module: AnsibleModule, spec: ConnectionSpec, names: Optional[list[str]],
                       expected: Optional[dict[str, Any]]) -> dict[str, Any]:
    try:
        taken = take_fingerprint(open_source(spec), names)
    except Exception as exc:  # noqa: BLE001 - any client error means the server cannot be read
        module.fail_json(msg=f"cannot fingerprint the collections of {spec.describe()}: {type(exc).__name__}: {exc}")
    out: dict[str, Any] = {"fingerprint": taken}
    if expected is not None:
        out["drift"] = drift(expected, taken)
    return out


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
