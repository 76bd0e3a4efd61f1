"""What one small task costs in ansible-playbook, with and without the project's action plugin loaded.

    .venv/bin/python bench/bench_task_overhead.py [--tasks 120] [--rounds 3]

Most of migrate.yml's ~220 tasks (about 55 of them inside the write freeze) are small: a set_fact,
a debug line, a skipped step, a chroma_run call that writes the run's state. Each one forks a worker
from ansible's main process, and the worker templates the task's arguments before it runs it. The
project's action plugin (plugins/action/chroma_run.py) readies that templating in the main process
when it loads (``warm_templating``: filter and test plugins, the lexer, the connection plugins), so
the workers do not load them again.

This script times the same playbook of small tasks (a set_fact of a three-level variable chain,
behind a ``when``, as the roles' tasks are) in two variants, one round of each after the other:
"plain" (the first task is a builtin one) and "plugin loaded" (the first task is chroma_app_health,
which loads the project's plugin in the main process). The cost of one task is the difference
between a playbook of ``--tasks`` tasks and one of none, divided by ``--tasks``. Prints the median
over the rounds of each variant, and the load average (other work on the box inflates the figures).
Asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = str(REPO / ".venv" / "bin" / "ansible-playbook")

HEAD = """\
- name: Small tasks
  hosts: localhost
  gather_facts: false
  vars:
    bench_root: "{{ playbook_dir | dirname }}"
    bench_lab: "{{ bench_root }}/.lab"
    bench_runs: "{{ bench_lab }}/runs"
  tasks:
"""
FIRST = {
    "plain": """\
    - name: First task (builtin)
      ansible.builtin.set_fact:
        bench_first: 1
""",
    "plugin loaded": """\
    - name: First task (the project's action plugin, loaded in ansible's main process)
      chroma_app_health:
        url: http://127.0.0.1:9/
        timeout_s: 1
      failed_when: false
""",
}
SMALL = """\
    - name: Small task {number}
      ansible.builtin.set_fact:
        bench_value_{number}: "{{{{ bench_runs }}}}"
      when: not ansible_check_mode
"""


def write_playbook(directory: Path, variant: str, tasks: int) -> Path:
    path = directory / f"{variant.replace(' ', '_')}_{tasks}.yml"
    path.write_text(HEAD + FIRST[variant] + "".join(SMALL.format(number=n) for n in range(tasks)))
    return path


def wall(playbook: Path) -> float:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    started = time.perf_counter()
    subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", str(playbook)], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; {args.tasks} small tasks, "
          f"{args.rounds} rounds")
    per_task: dict[str, list[float]] = {variant: [] for variant in FIRST}
    with tempfile.TemporaryDirectory(prefix="bench-task-overhead-") as scratch:
        directory = Path(scratch)
        for number in range(1, args.rounds + 1):
            for variant in FIRST:
                empty = wall(write_playbook(directory, variant, 0))
                full = wall(write_playbook(directory, variant, args.tasks))
                per_task[variant].append((full - empty) / args.tasks)
                print(f"  round {number} {variant:<14} {per_task[variant][-1] * 1000:5.1f} ms a task "
                      f"(playbook of {args.tasks}: {full:.2f} s, of none: {empty:.2f} s)")
    medians = {variant: statistics.median(values) for variant, values in per_task.items()}
    for variant, value in medians.items():
        print(f"{variant}: {value * 1000:.1f} ms a task (median of {args.rounds})")
    saved = medians["plain"] - medians["plugin loaded"]
    print(f"saved by the plugin's warm-up: {saved * 1000:.1f} ms a task; x55 tasks in the lab's write freeze = "
          f"{saved * 55:.2f} s; load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
