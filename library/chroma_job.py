#!/usr/bin/python
"""Ansible module: wait (a bounded time) for a background job of this host, as async_status reads it."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_job
short_description: Wait up to a few seconds for a background (async) job and return its status or result
description:
  - "Reads the job file that ansible's async wrapper keeps for O(jid) (in O(async_dir), the connection's
    C(async_dir) shell option, which the action plugin passes), the way M(ansible.builtin.async_status)
    does, but waits up to O(wait_s) for the job to end: it returns as soon as the job has ended, with the
    job's own result (a failed job fails the task), or after O(wait_s) with C(finished=false)."
  - "It replaces a C(pause) followed by C(async_status): the migration's progress loop no longer waits a
    whole interval after the job ended, and on a local connection the action plugin runs it in ansible's
    own process instead of starting a Python interpreter for every poll (each one took CPU from the job
    it watched)."
  - "With O(cleanup), the job file is removed once the job has ended (async_status C(mode=cleanup)); a job
    still running is never touched."
version_added: "1.0.0"
author: chroma-runbook
options:
  jid:
    description: The job id (C(ansible_job_id) of the task started with C(async) and C(poll=0)).
    type: str
    required: true
  wait_s:
    description: Seconds to wait for the job to end before answering C(finished=false); 0 reads it once.
    type: float
    default: 0
  interval_s:
    description: Seconds between two reads of the job file while waiting.
    type: float
    default: 0.1
  cleanup:
    description: Remove the job file once the job has ended (not in check mode).
    type: bool
    default: false
  async_dir:
    description: Directory of the job files (C(~) allowed); the action plugin sets it from the connection's shell option.
    type: path
    default: ~/.ansible_async
attributes:
  check_mode:
    support: full
    details: Reads the job file as in a normal run; O(cleanup) removes nothing and says C(would_erase).
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Start the migration
  chroma_migrate: "{{ args }}"
  async: 7200
  poll: 0
  register: job

- name: Wait up to 5 s for it (its result once it has ended)
  chroma_job:
    jid: "{{ job.ansible_job_id }}"
    wait_s: 5
    cleanup: true
  register: poll
  until: poll.finished
  retries: 1000
  delay: 0
"""

RETURN = r"""
ansible_job_id:
  description: The job id.
  returned: always
  type: str
started:
  description: The job has started.
  returned: always
  type: bool
finished:
  description: The job has ended; the job's own result keys are returned beside (a failed job fails the task).
  returned: always
  type: bool
waited_s:
  description: Seconds this call waited.
  returned: always
  type: float
results_file:
  description: The job file read.
  returned: always
  type: str
erased:
  description: The job file removed (O(cleanup), the job ended).
  returned: when removed
  type: str
would_erase:
  description: The job file O(cleanup) would remove (check mode).
  returned: in check mode with cleanup, once the job ended
  type: str
"""

import json
import os
import sys
import time
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

ARGUMENT_SPEC = {
    "jid": {"type": "str", "required": True},
    "wait_s": {"type": "float", "default": 0.0},
    "interval_s": {"type": "float", "default": 0.1},
    "cleanup": {"type": "bool", "default": False},
    "async_dir": {"type": "path", "default": "~/.ansible_async"},
}


def read_job(path: str) -> Optional[dict[str, Any]]:
    """The job file's content; {} while it is being written; None when there is no such file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {}  # the wrapper writes a temp file and renames it; an unreadable file is one still starting
    return data if isinstance(data, dict) else {}


def ended(data: dict[str, Any]) -> bool:
    """async_status's rule: the wrapper's own record says started (and finished); a module's result does not."""
    if "started" not in data:
        return bool(data)
    return bool(data.get("finished"))


def wait_for(path: str, wait_s: float, interval_s: float) -> tuple[Optional[dict[str, Any]], float]:
    """Read ``path`` until the job ended or ``wait_s`` passed: (last content, seconds waited)."""
    began = time.monotonic()
    while True:
        data = read_job(path)
        waited = time.monotonic() - began
        if data is None or ended(data) or waited >= wait_s:
            return data, round(waited, 3)
        time.sleep(max(0.01, min(interval_s, wait_s - waited)))


def run_module() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    jid = p["jid"]
    if os.sep in jid or jid in ("", ".", ".."):
        module.fail_json(msg=f"jid {jid!r} is not a job id", ansible_job_id=jid)
    path = os.path.join(os.path.expanduser(p["async_dir"]), jid)
    data, waited = wait_for(path, max(0.0, p["wait_s"]), p["interval_s"])
    if data is None:
        module.fail_json(msg=f"could not find job {jid} in {os.path.dirname(path)}", ansible_job_id=jid,
                         started=True, finished=True, results_file=path)
    if not ended(data):
        module.exit_json(ansible_job_id=jid, started=True, finished=False, waited_s=waited, results_file=path)
    data = dict(data, ansible_job_id=jid, started=True, finished=True, waited_s=waited, results_file=path)
    if p["cleanup"]:
        if module.check_mode:
            data["would_erase"] = path
        else:
            os.unlink(path)
            data["erased"] = path
    # the job's result as it is (its changed, failed, msg...), as async_status prints it
    print(f"\n{json.dumps(data)}")
    sys.exit(0)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
