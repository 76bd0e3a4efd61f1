"""The lab's maintenance window: write freeze, whole run and per-step times of migrate.yml.

    .venv/bin/python bench/bench_lab_window.py [--dir /tmp/window-lab] [--port-base 24000] [--rounds 1] [--keep]

Starts a fresh lab (labctl down --purge, then up: the lab's dataset, both apps, nginx), runs
`ansible-playbook migrate.yml -e confirm=yes` against it (as `make demo` does) and prints, from the
run's reports/summary.json: the write freeze (goal <= 15 s), the largest app write outage, the whole
run (goal <= 60 s) and each step's time. With --rounds N it does that N times, each on a fresh lab,
and closes with the median, lowest and highest of each figure (one run on a 2-core box varies by
a second or two). The lab is torn down afterwards unless --keep.
Prints the load average next to the figures (other work on the box inflates them). Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python")
PLAYBOOK = str(REPO / ".venv" / "bin" / "ansible-playbook")


def labctl(action: str, lab_dir: str, port_base: int, *extra: str) -> None:
    subprocess.run([PYTHON, "-m", "lab.labctl", action, *extra, "--dir", lab_dir, "--port-base", str(port_base)],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def run_migrate(lab_dir: str, port_base: int, log: Path) -> tuple[int, float]:
    """One migrate.yml run on the lab; (exit code, wall seconds). Output goes to ``log``."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    started = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run([PLAYBOOK, "migrate.yml", "-e", "confirm=yes", "-e", f"chroma_lab_dir={lab_dir}",
                             "-e", f"chroma_lab_port_base={port_base}"], cwd=REPO, env=env, stdout=out,
                            stderr=subprocess.STDOUT).returncode
    return rc, time.perf_counter() - started


def report(summary: dict[str, Any], wall: float) -> None:
    figures = summary["figures"]
    print(f"write freeze {figures['write_freeze_s']:.1f} s (goal <= 15 s), max app write outage "
          f"{figures['max_app_write_outage_s']:.1f} s, whole run {figures['migration_s']:.1f} s (goal <= 60 s); "
          f"ansible-playbook wall {wall:.1f} s")
    for step in summary["steps"]:
        print(f"  {step['step']:<11} {step['outcome']:<6} {step['duration_s']:6.1f} s")
    for line in summary["lines"]:
        if "pre-copy" in line or "delta" in line:
            print(line)


def one_round(lab_dir: str, port_base: int) -> Optional[dict[str, float]]:
    """A fresh lab and one migrate.yml on it; its figures (None when the run failed)."""
    labctl("down", lab_dir, port_base, "--purge")
    labctl("up", lab_dir, port_base)
    log = Path(lab_dir) / "bench_lab_window.log"
    rc, wall = run_migrate(lab_dir, port_base, log)
    if rc != 0:
        print(f"migrate.yml failed with exit {rc}; see {log}")
        return None
    summary = json.loads((Path(lab_dir) / "runs" / "latest" / "reports" / "summary.json").read_text())
    report(summary, wall)
    figures = summary["figures"]
    return {"write freeze": figures["write_freeze_s"], "max app write outage": figures["max_app_write_outage_s"],
            "whole run": figures["migration_s"]}


def spread(rounds: list[dict[str, float]]) -> None:
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        print(f"{name}: median {statistics.median(values):.1f} s, lowest {min(values):.1f} s, "
              f"highest {max(values):.1f} s over {len(values)} runs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/window-lab")
    parser.add_argument("--port-base", type=int, default=24000)
    parser.add_argument("--rounds", type=int, default=1, help="runs, each on a fresh lab (figures: their median)")
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (other work on the box inflates figures)")
    rounds: list[dict[str, float]] = []
    try:
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"--- run {number} of {args.rounds}")
            figures = one_round(args.dir, args.port_base)
            if figures is None:
                return 1
            rounds.append(figures)
        if len(rounds) > 1:
            spread(rounds)
    finally:
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        if not args.keep:
            labctl("down", args.dir, args.port_base, "--purge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
