#!/usr/bin/python
"""Ansible module: tell the operators about a milestone of the run (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_notify
short_description: Post a Slack-compatible message about a milestone of the run to each webhook
description:
  - POSTs a JSON object whose only key C(text) holds O(text) to every URL of O(webhooks) (Slack, Mattermost,
    Rocket.Chat and most chat tools accept it on an incoming webhook).
  - A webhook that fails (refused, timeout, non-2xx answer) gives a warning naming it; the module never
    fails because of a webhook, so a notification can never stop the runbook.
  - Nothing is sent in check mode (a dry run notifies nobody); the result says what would be sent.
  - Webhook paths are secrets (a Slack URL is its own token) - results show scheme and host only.
version_added: "1.0.0"
author: chroma-runbook
options:
  webhooks:
    description: URLs receiving the message; an empty list sends nothing.
    type: list
    elements: str
    default: []
  text:
    description: The message.
    type: str
    required: true
  timeout:
    description: Seconds one webhook may take.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Tell the operators writes are frozen
  chroma_notify:
    webhooks: "{{ chroma_notify_webhooks }}"
    text: "[chroma-runbook] run {{ chroma_run_id }}: FROZEN - writes refused at {{ chroma_front_door_url }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
sent:
  description: Number of webhooks that accepted the message.
  returned: always
  type: int
undelivered:
  description: Number of webhooks that did not (each one is also a warning).
  returned: always
  type: int
deliveries:
  description: One entry per webhook - C(url) (scheme and host only), C(ok), C(status), C(error).
  returned: always
  type: list
  elements: dict
text:
  description: The message.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.run.notify import notify, redact


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "webhooks": {"type": "list", "elements": "str", "default": [], "no_log": True},
            "text": {"type": "str", "required": True},
            "timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    urls, text = module.params["webhooks"], module.params["text"]
    if module.check_mode:
        module.exit_json(changed=False, sent=0, undelivered=0, text=text,
                         deliveries=[{"url": redact(u), "ok": None, "status": None, "error": "check mode: not sent"}
                                     for u in urls])
    deliveries = notify(urls, text, module.params["timeout"])
    for item in deliveries:
        if not item.ok:
            module.warn(f"notification not delivered to {item.url}: {item.error or item.status} (the run goes on)")
    module.exit_json(changed=False, text=text, deliveries=[d.as_dict() for d in deliveries],
                     sent=sum(1 for d in deliveries if d.ok), undelivered=sum(1 for d in deliveries if not d.ok))


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
