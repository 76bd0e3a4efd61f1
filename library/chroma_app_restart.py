#!/usr/bin/python
"""Ansible module: restart an application with the manager that runs it (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_app_restart
short_description: Restart an application with supervisor, systemd, docker compose or its own command
description:
  - Runs the manager's restart command on the app's host - C(supervisorctl restart SERVICE),
    C(systemctl restart SERVICE), C(docker compose -f FILE up -d --force-recreate SERVICE), or the app's own
    O(command).
  - With O(background=true) the command is started in its own session, its output goes to O(log_path), and the
    module returns at once - the apps of a batch restart together, and the caller proves each restart with the
    app's health (M(chroma_app_health) with the key that names its Chroma); what a failed restart printed is in
    O(log_path) on the app's host. With O(background=false) the module waits for the command and fails naming
    the command, its exit status and its output.
  - Always changes something (a restart). Check mode runs nothing and reports the command it would run.
version_added: "1.3.0"
author: chroma-runbook
options:
  manager:
    description: What runs the app.
    type: str
    required: true
    choices: [supervisor, systemd, docker_compose, command]
  service:
    description: The supervisor program, systemd unit or compose service. Not needed with O(manager=command).
    type: str
    default: ""
  supervisorctl:
    description: The argv prefix that reaches the app's supervisord (e.g. C([supervisorctl, -c, /etc/supervisord.conf])).
    type: list
    elements: str
    default: [supervisorctl]
  compose_file:
    description: The docker compose file (O(manager=docker_compose)).
    type: path
    default: ""
  command:
    description: The restart argv (O(manager=command)).
    type: list
    elements: str
    default: []
  background:
    description: Start the restart and return at once (the caller's health gate proves it); false waits for it.
    type: bool
    default: true
  timeout_s:
    description: How long a foreground restart may take, in seconds.
    type: float
    default: 60
  log_path:
    description:
      - Where a background restart's output goes, on the app's host (a private file, replaced at each restart).
      - Default C(chroma-runbook-restart-SERVICE.log) in the system's temporary directory.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Restart the app under supervisor in the background (the health gate proves it)
  chroma_app_restart:
    manager: supervisor
    service: app_openwebui
    supervisorctl: [supervisorctl, -c, /etc/supervisor/supervisord.conf]

- name: Restart with the app's own command and wait for it
  chroma_app_restart:
    manager: command
    command: [/opt/app/bin/restart]
    background: false
"""

RETURN = r"""
argv:
  description: The command that restarts (or in check mode would restart) the app.
  returned: always
  type: list
  elements: str
background:
  description: Whether the restart was left running in the background.
  returned: always
  type: bool
pid:
  description: PID of the background restart command.
  returned: when it was started in the background
  type: int
log_path:
  description: The background restart's output file on the app's host.
  returned: when it was started in the background
  type: str
rc:
  description: Exit status of the foreground restart command.
  returned: when it ran in the foreground
  type: int
output:
  description: What the foreground restart command printed (the last 2000 characters).
  returned: when it ran in the foreground
  type: str
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.run.app_restart import (RestartError, RestartSpec, run_in_foreground,
                                                                  start_in_background)


def default_log_path(service: str) -> str:
    """chroma-runbook-restart-<service>.log in the temporary directory (the name made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", service or "app")
    return os.path.join(tempfile.gettempdir(), f"chroma-runbook-restart-{safe}.log")


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "manager": {"type": "str", "required": True, "choices": ["supervisor", "systemd", "docker_compose", "command"]},
            "service": {"type": "str", "default": ""},
            "supervisorctl": {"type": "list", "elements": "str", "default": ["supervisorctl"]},
            "compose_file": {"type": "path", "default": ""},
            "command": {"type": "list", "elements": "str", "default": []},
            "background": {"type": "bool", "default": True},
            "timeout_s": {"type": "float", "default": 60.0},
            "log_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    p = module.params
    spec = RestartSpec(p["manager"], p["service"], tuple(p["supervisorctl"]), p["compose_file"] or "", tuple(p["command"]))
    problem = spec.problem()
    if problem:
        module.fail_json(msg=f"chroma_app_restart {p['service'] or p['command']}: {problem}")
    argv = spec.argv()
    result = {"changed": True, "argv": argv, "background": p["background"]}
    if module.check_mode:
        module.exit_json(**result)
    try:
        if p["background"]:
            log_path = p["log_path"] or default_log_path(p["service"])
            result.update(pid=start_in_background(argv, log_path), log_path=log_path)
        else:
            result.update(run_in_foreground(argv, p["timeout_s"]))
    except RestartError as exc:
        module.fail_json(msg=f"restart of {p['service'] or 'the app'} ({p['manager']}): {exc}", **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
