#!/usr/bin/python
"""Ansible module: watch an app for a monitoring window (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_app_probe
short_description: Watch an application's search endpoint for a window against latency and error thresholds
description:
  - Sends one GET every O(interval_s) seconds for O(window_s) seconds (at least O(min_samples) requests)
    and measures each request's latency. A request is an error when it fails, answers non-2xx, or, with
    O(results_key), answers JSON without a non-empty list under that key.
  - Fails when the average latency, the p95 latency or the error rate goes over its threshold; the
    message names which one. The seed's defaults are 500 ms average latency and no errors.
  - Read-only (GET requests); it runs in check mode as well.
version_added: "1.0.0"
author: chroma-runbook
options:
  url:
    description: Full URL to GET (e.g. the app's search endpoint with a smoke query).
    type: str
    required: true
  window_s:
    description: How long to watch, in seconds (the seed watches 5 minutes).
    type: float
    default: 300
  interval_s:
    description: Seconds between two requests.
    type: float
    default: 1
  min_samples:
    description: At least this many requests, whatever the window.
    type: int
    default: 3
  timeout_s:
    description: Timeout of one request.
    type: float
    default: 5
  max_avg_latency_ms:
    description: Highest acceptable average latency.
    type: float
    default: 500
  max_p95_latency_ms:
    description: Highest acceptable p95 latency (not checked when unset).
    type: float
  max_error_rate:
    description: Highest acceptable share of failed requests (0 = none may fail).
    type: float
    default: 0
  results_key:
    description: JSON key whose list must be non-empty for a request to count as a success; empty disables it.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Watch the app for 5 minutes after its cutover
  chroma_app_probe:
    url: "http://127.0.0.1:8010/search?q=personality&collection=sergio_corpus&n=5"
    window_s: 300
    results_key: results
"""

RETURN = r"""
ok:
  description: The window stayed within every threshold.
  returned: always
  type: bool
samples:
  description: Number of requests sent.
  returned: always
  type: int
errors:
  description: Number of failed requests.
  returned: always
  type: int
error_rate:
  description: Share of failed requests.
  returned: always
  type: float
avg_latency_ms:
  description: Average latency.
  returned: always
  type: float
p95_latency_ms:
  description: 95th percentile latency.
  returned: always
  type: float
max_latency_ms:
  description: Highest latency.
  returned: always
  type: float
first_errors:
  description: Up to five failed samples (C(at_s), C(status), C(latency_ms), C(error)).
  returned: always
  type: list
  elements: dict
reasons:
  description: Which thresholds were crossed.
  returned: always
  type: list
  elements: str
window_s:
  description: How long the watch actually took.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.run.app_probe import Thresholds, watch


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "window_s": {"type": "float", "default": 300.0},
            "interval_s": {"type": "float", "default": 1.0},
            "min_samples": {"type": "int", "default": 3},
            "timeout_s": {"type": "float", "default": 5.0},
            "max_avg_latency_ms": {"type": "float", "default": 500.0},
            "max_p95_latency_ms": {"type": "float"},
            "max_error_rate": {"type": "float", "default": 0.0},
            "results_key": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["url"].startswith(("http://", "https://")):
        module.fail_json(msg=f"url must start with http:// or https://, got {p['url']!r}")
    thresholds = Thresholds(p["max_avg_latency_ms"], p["max_p95_latency_ms"], p["max_error_rate"])
    try:
        verdict = watch(
            p["url"], p["window_s"], p["interval_s"], thresholds, p["timeout_s"], p["results_key"], p["min_samples"]
        )
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if not verdict["ok"]:
        module.fail_json(msg=f"monitoring window of {p['url']} failed: " + "; ".join(verdict["reasons"]), **verdict)
    module.exit_json(changed=False, **verdict)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
