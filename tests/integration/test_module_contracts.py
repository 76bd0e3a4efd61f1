"""Module documentation and argument specs: one doc fragment describes every connection
option with its suboptions, and the argument specs (not hand checks) refuse bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chroma_runbook.io.connection import CONNECTION_ARG_SPEC
from module_play import run_module

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONNECTIONS = {"chroma_info": ["server"], "chroma_migrate": ["source", "target"],
               "chroma_validate": ["source", "target"], "chroma_snapshot": ["source"], "chroma_restore": ["target"]}


def ansible_env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                PATH=f"{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_PYTHON_INTERPRETER=sys.executable)


def test_every_connection_option_is_documented_by_the_fragment_with_its_suboptions():
    proc = subprocess.run([str(BIN / "ansible-doc"), "-M", "library", "--json", *CONNECTIONS], cwd=REPO,
                          env=ansible_env(), capture_output=True, text=True, timeout=120, check=True)
    docs = json.loads(proc.stdout)
    for module, options in CONNECTIONS.items():
        for option in options:
            doc = docs[module]["doc"]["options"][option]
            assert doc["type"] == "dict", (module, option)
            subs = doc["suboptions"]
            assert set(subs) == set(CONNECTION_ARG_SPEC), (module, option)
            for key, spec in CONNECTION_ARG_SPEC.items():
                assert subs[key]["type"] == spec["type"], (module, option, key)
                assert subs[key].get("default") == spec.get("default"), (module, option, key)
    # module-specific wording stays, the fragment gives type and suboptions
    assert docs["chroma_snapshot"]["doc"]["options"]["source"]["required"] is False
    assert "frozen" in " ".join(docs["chroma_migrate"]["doc"]["options"]["source"]["description"])


def test_every_module_has_documentation_that_parses_with_examples_and_return():
    modules = sorted(path.stem for path in (REPO / "library").glob("*.py"))
    proc = subprocess.run([str(BIN / "ansible-doc"), "-M", "library", "--json", *modules], cwd=REPO,
                          env=ansible_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    docs = json.loads(proc.stdout)
    for module in modules:
        assert docs[module]["doc"]["module"] == module, module
        assert docs[module]["examples"] and docs[module]["return"], module


@pytest.mark.parametrize("module,args,message", [
    ("chroma_run", {"action": "step_end", "runs_dir": "RUNS", "step": "s"},
     "action is step_end but all of the following are missing: run_id"),
    ("chroma_run", {"action": "step_start", "runs_dir": "RUNS", "run_id": "r1"},
     "action is step_start but all of the following are missing: step"),
    ("chroma_info", {"server": {"url": "http://127.0.0.1:1", "path": "/nonexistent"}},
     "parameters are mutually exclusive: url|path found in server"),
    ("chroma_info", {"server": {"tenant": "t"}}, "one of the following is required: url, path found in server"),
])
def test_argument_specs_refuse_what_hand_checks_refused(tmp_path, module, args, message):
    args = {k: (str(tmp_path / "runs") if v == "RUNS" else v) for k, v in args.items()}
    rc, result, out = run_module(tmp_path, module, args)
    assert rc != 0 and result.get("msg") == message, out
    assert not (tmp_path / "runs").exists()


RESTART_PLAY = """\
- name: Restart with an unknown manager
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Restart entry point of chroma_cutover
      ansible.builtin.include_role:
        name: chroma_cutover
        tasks_from: restart
      vars:
        chroma_cutover_manager: "{{ manager }}"
        chroma_cutover_service: demo
        chroma_cutover_restart_command: [/bin/true]
"""


def test_the_restart_managers_are_the_argument_specs_choices(tmp_path):
    play = tmp_path / "restart.yml"
    play.write_text(RESTART_PLAY)
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)]
    bad = subprocess.run(cmd + ["-e", "manager=bogus"], cwd=REPO, env=ansible_env(), capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0
    assert "chroma_cutover_manager must be one of: supervisor, systemd, docker_compose, command" in bad.stdout, bad.stdout
    good = subprocess.run(cmd + ["-e", "manager=command"], cwd=REPO, env=ansible_env(), capture_output=True,
                          text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
