"""chroma_job (the migration's progress poll) through a real ansible-playbook and real async jobs.

A job still running answers finished=false after wait_s; one that ends while it waits is answered
at its end with its own result, well before wait_s; cleanup removes the job's file (not in check
mode); a failed job fails the task with its own message; an unknown job fails naming the directory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(300)

PLAY = """\
- name: Jobs
  hosts: localhost
  gather_facts: false
  tasks:
    - name: A job that sleeps, then answers
      ansible.builtin.command: "{python} -c 'import time; time.sleep(1.5); print(\\"done\\")'"
      async: 60
      poll: 0
      register: sleeper
      changed_when: true

    - name: Read it at once
      chroma_job:
        jid: "{{{{ sleeper.ansible_job_id }}}}"
      register: at_once

    - name: Wait for it, in check mode first (its file stays)
      chroma_job:
        jid: "{{{{ sleeper.ansible_job_id }}}}"
        wait_s: 120
        cleanup: true
      check_mode: true
      register: checked

    - name: Collect and clean up
      chroma_job:
        jid: "{{{{ sleeper.ansible_job_id }}}}"
        cleanup: true
      register: collected

    - name: Ask again for the removed job
      chroma_job:
        jid: "{{{{ sleeper.ansible_job_id }}}}"
      register: gone
      ignore_errors: true  # noqa: ignore-errors - the test reads the failure

    - name: A job that fails
      ansible.builtin.command: "{python} -c 'import sys; sys.exit(3)'"
      async: 60
      poll: 0
      register: failing
      changed_when: true

    - name: Wait for the failing job
      chroma_job:
        jid: "{{{{ failing.ansible_job_id }}}}"
        wait_s: 120
        cleanup: true
      register: failed_job
      ignore_errors: true  # noqa: ignore-errors - the test reads the failure

    - name: Save what was seen
      ansible.builtin.copy:
        content: "{{{{ {{'at_once': at_once, 'checked': checked, 'collected': collected, 'gone': gone,
                       'failed_job': failed_job, 'async_dir': async_dir}} | to_json }}}}"
        dest: "{out}"
        mode: "0600"
      vars:
        async_dir: "{async_dir}"
"""


def test_chroma_job_waits_collects_cleans_up_and_fails_with_the_job(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    async_dir = tmp_path / "async"
    (tmp_path / "play.yml").write_text(PLAY.format(python=sys.executable, out=out, async_dir=async_dir))
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_ASYNC_DIR=str(async_dir), ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           str(tmp_path / "play.yml")], env=env, capture_output=True, text=True, timeout=240,
                          cwd=str(REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = json.loads(out.read_text())

    at_once = seen["at_once"]                                # the job sleeps 1.5 s: not ended yet
    assert at_once["finished"] is False and at_once["started"] is True, at_once
    assert at_once["results_file"].startswith(str(async_dir)), at_once   # the connection's async_dir

    checked = seen["checked"]                                # answered at the job's end, not after 120 s
    assert checked["finished"] is True and checked["waited_s"] < 60, checked
    assert checked["rc"] == 0 and checked["stdout"] == "done" and checked["changed"] is True, checked
    assert checked["would_erase"] == checked["results_file"] and "erased" not in checked, checked

    collected = seen["collected"]                            # the file was still there after check mode
    assert collected["finished"] is True and collected["stdout"] == "done", collected
    assert collected["erased"] == collected["results_file"] and not Path(collected["erased"]).exists(), collected

    gone = seen["gone"]
    assert gone["failed"] is True and gone["msg"] == (f"could not find job {collected['ansible_job_id']} "
                                                      f"in {async_dir}"), gone

    failed_job = seen["failed_job"]                          # the job's own failure, as async_status gives it
    assert failed_job["failed"] is True and failed_job["rc"] == 3 and failed_job["finished"] is True, failed_job
    assert not Path(failed_job["results_file"]).exists(), failed_job
