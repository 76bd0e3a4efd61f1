#!/usr/bin/python
"""Ansible module: prove a write freeze with canary writes through the front door (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_freeze_proof
short_description: Prove that the front door refuses writes and still serves reads
description:
  - Asks the source behind O(front_door) for its version (a 0.4/0.5 source is spoken to over C(/api/v1)).
  - Sends a harmless probe write (to a collection id that cannot exist) until it is refused with HTTP 503,
    for at most O(settle_timeout_s) seconds, so a proxy reload has taken effect.
  - Then reads must answer 200 - list collections, get one record, query with its embedding (Chroma serves
    the last two as POST) - and two canary writes must be refused with C(503 WritesFrozen) - create the
    collection O(canary_collection), add the record O(canary_id) to an existing collection.
  - A canary that got through is taken back directly on O(source) (the collection dropped, the record
    deleted) and the module fails - an unproven freeze is no freeze. Its message names each answer.
  - One module call instead of one task per request, so the proof adds little to the write freeze.
  - In check mode it sends nothing (a canary could be stored if the freeze did not hold) and says what it
    would prove.
version_added: "1.2.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.front_door
  - chroma_connection.source
options:
  canary_collection:
    description: Name of the canary collection (never stored while the freeze holds).
    type: str
    default: chroma_runbook_canary
  canary_id:
    description: Id of the canary record (never stored while the freeze holds).
    type: str
    default: chroma-runbook-canary
  settle_timeout_s:
    description: How long the probe write may still pass after the proxy reload.
    type: float
    default: 10
  settle_interval_s:
    description: Seconds between two probe writes.
    type: float
    default: 0.25
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Prove the freeze
  chroma_freeze_proof:
    front_door: {url: "http://127.0.0.1:8000"}
    source: {url: "http://127.0.0.1:8001"}
  register: proof
"""

RETURN = r"""
server_version:
  description: What the source behind the front door said (C(version), C(api), C(legacy)).
  returned: success
  type: dict
settle:
  description: The probe writes until the freeze took effect (C(attempts), last C(status)).
  returned: success
  type: dict
reads:
  description: HTTP status of each read (list collections, get one record, query with its embedding).
  returned: success
  type: dict
collection:
  description: The collection the add canary and the reads used.
  returned: success
  type: str
canaries:
  description: C(create) and C(add) - C(status), C(refused) (503 WritesFrozen) and the first 200 characters of C(answer).
  returned: success
  type: dict
cleaned_up:
  description: What a canary that got through wrote and was taken back on the source.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.io.connection import ConnectionError_, ConnectionSpec, connection_option
from ansible.module_utils.chroma_runbook.run.freeze_proof import CanaryNames, FreezeNotProven, SourceRefused, prove_freeze


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "front_door": connection_option(),
            "source": connection_option(),
            "canary_collection": {"type": "str", "default": "chroma_runbook_canary"},
            "canary_id": {"type": "str", "default": "chroma-runbook-canary"},
            "settle_timeout_s": {"type": "float", "default": 10.0},
            "settle_interval_s": {"type": "float", "default": 0.25},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        front = ConnectionSpec.from_dict(p["front_door"], "front_door")
        source = ConnectionSpec.from_dict(p["source"], "source")
    except ConnectionError_ as exc:
        module.fail_json(msg=str(exc))
    if not front.url or not source.url:
        module.fail_json(msg="front_door and source must be server URLs (the proof goes over HTTP)")
    if module.check_mode:
        module.exit_json(changed=False, cleaned_up=[], msg=(
            f"would prove the freeze at {front.describe()}: reads answer 200, a create-collection and an add "
            f"canary answer 503 WritesFrozen"))
    names = CanaryNames(p["canary_collection"], p["canary_id"])
    try:
        result = prove_freeze(front, source, names, p["settle_timeout_s"], p["settle_interval_s"])
    except FreezeNotProven as exc:
        module.fail_json(msg=str(exc), changed=bool(exc.result.get("cleaned_up")), **exc.result)
    except SourceRefused as exc:
        module.fail_json(msg=f"Write freeze NOT proven: {exc}. Nothing was migrated.", cleaned_up=[])
    module.exit_json(changed=False, **result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
