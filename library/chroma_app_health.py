#!/usr/bin/python
"""Ansible module: wait for an application's health answer, with a real deadline (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_app_health
short_description: Wait until an application's health URL says it is up and serving from the right Chroma
description:
  - Asks the health URL every O(interval_s) seconds until it answers 200 with JSON holding C(ok=true) and,
    with O(key), C(answer[key]) equal to O(equals) (after a cutover, the app serves from the target) or other
    than O(not_equals) (after a rollback, it left the target).
  - The deadline O(timeout_s) is real - every request is cut short by what is left of it, so a host lost on
    the network costs O(timeout_s), not O(timeout_s) times the retries.
  - Returns the engine's clock at the healthy answer (RV(healthy_at)) - an app's write outage ends there.
  - Fails naming the URL, the expectation, how many requests were sent and the last answer.
  - Read-only (GET requests); it runs in check mode as well.
version_added: "1.2.0"
author: chroma-runbook
options:
  url:
    description: The app's health URL.
    type: str
    required: true
  key:
    description: The key of the health answer that names the Chroma the app serves from (e.g. C(chroma_url)).
    type: str
    default: ""
  equals:
    description: The value O(key) must have. Needs O(key).
    type: str
  not_equals:
    description: A value O(key) must no longer have. Needs O(key).
    type: str
  timeout_s:
    description: How long to wait at most, in seconds.
    type: float
    default: 30
  interval_s:
    description: Seconds between two requests.
    type: float
    default: 0.2
  request_timeout_s:
    description: Timeout of one request (also bounded by what is left of O(timeout_s)).
    type: float
    default: 2
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait until the app serves from the target
  chroma_app_health:
    url: "http://127.0.0.1:8010/health"
    key: chroma_url
    equals: "http://127.0.0.1:8002"
    timeout_s: 30
  register: app_health

- name: Wait until the app left the target (rollback)
  chroma_app_health:
    url: "http://127.0.0.1:8010/health"
    key: chroma_url
    not_equals: "http://127.0.0.1:8002"
"""

RETURN = r"""
healthy_at:
  description: The engine's clock (ISO-8601 UTC with milliseconds) when the healthy answer came.
  returned: success
  type: str
attempts:
  description: How many requests were sent.
  returned: always
  type: int
waited_s:
  description: Seconds from the first request to the healthy answer (or to the deadline).
  returned: always
  type: float
status:
  description: HTTP status of the last answer (-1 when there was none).
  returned: always
  type: int
answer:
  description: The last answer's JSON (null when it was not JSON or there was none).
  returned: always
  type: raw
last_error:
  description: Why the last request got no usable answer (empty when it did).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.run.app_health import HealthExpectation, unhealthy_message, wait_until_healthy


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "key": {"type": "str", "default": ""},
            "equals": {"type": "str"},
            "not_equals": {"type": "str"},
            "timeout_s": {"type": "float", "default": 30.0},
            "interval_s": {"type": "float", "default": 0.2},
            "request_timeout_s": {"type": "float", "default": 2.0},
        },
        mutually_exclusive=[("equals", "not_equals")],
        supports_check_mode=True,
    )
    p = module.params
    if not p["url"].startswith(("http://", "https://")):
        module.fail_json(msg=f"url must start with http:// or https://, got {p['url']!r}")
    expectation = HealthExpectation(p["key"], p["equals"], p["not_equals"])
    try:
        outcome = wait_until_healthy(p["url"], expectation, p["timeout_s"], p["interval_s"], p["request_timeout_s"])
    except ValueError as exc:
        module.fail_json(msg=f"chroma_app_health {p['url']}: {exc}")
    if not outcome.pop("healthy"):
        module.fail_json(msg=unhealthy_message(p["url"], expectation, p["timeout_s"], outcome), **outcome)
    module.exit_json(changed=False, **outcome)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
