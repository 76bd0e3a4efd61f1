"""Run one of our modules through a real ansible-playbook and return its registered result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from migrate_play import _Dumper

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

PLAY = """\
- name: Run {module}
  hosts: localhost
  gather_facts: false
  vars_files: [args.yml]
  tasks:
    - name: Run the module, keeping its result even when it fails
      block:
        - name: Call {module}
          {module}:
{keys}
          register: module_result
      always:
        - name: Save the result for the test
          ansible.builtin.copy:
            content: "{{{{ module_result | to_json }}}}"
            dest: "{out}"
            mode: "0600"
          check_mode: false
"""


def fresh_python(script: str, *args: str, env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter of this venv with the project's ansible.cfg (and ``env``);
    its last line, as JSON."""
    full_env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), **(env or {}))
    proc = subprocess.run([sys.executable, "-c", script, *args], env=full_env, capture_output=True, text=True,
                          timeout=120, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def run_module(workdir: Path, module: str, args: dict[str, Any], check: bool = False,
               name: str = "play") -> tuple[int, dict[str, Any], str]:
    """(return code, registered result, output) of ``module`` with ``args`` on localhost."""
    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    out = d / "result.json"
    # strings holding Jinja2 (schema templates) are written !unsafe, as group_vars do
    (d / "args.yml").write_text(yaml.dump({"module_args": args}, Dumper=_Dumper, allow_unicode=True))
    play = d / "play.yml"
    keys = "\n".join(f"            {k}: \"{{{{ module_args[{k!r}] }}}}\"" for k in args)
    play.write_text(PLAY.format(module=module, out=out, keys=keys))
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_LIBRARY=str(REPO / "library"), ANSIBLE_MODULE_UTILS=str(REPO / "module_utils"),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)]
    proc = subprocess.run(cmd + (["--check"] if check else []), env=env, capture_output=True, text=True,
                          timeout=300, cwd=str(REPO))
    result = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, result, proc.stdout + proc.stderr


def run_role_play(workdir: Path, role: str, variables: dict[str, Any], tasks_before: str = "",
                  playbook: str = "play.yml") -> subprocess.CompletedProcess[str]:
    """A real ansible-playbook on localhost whose play includes ``role`` with ``variables`` (vars.yml),
    after the tasks of ``tasks_before`` (YAML, indented as tasks of the play)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "vars.yml").write_text(yaml.safe_dump(variables))
    (workdir / playbook).write_text(
        f"- name: The role {role} alone\n  hosts: localhost\n  gather_facts: false\n  vars_files: [vars.yml]\n"
        f"  tasks:\n{tasks_before}    - name: Run {role}\n      ansible.builtin.include_role:\n        name: {role}\n")
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_LIBRARY=str(REPO / "library"), ANSIBLE_MODULE_UTILS=str(REPO / "module_utils"),
               ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", playbook],
                          env=env, capture_output=True, text=True, timeout=300, cwd=str(workdir))
