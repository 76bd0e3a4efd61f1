"""Run every molecule scenario, in lanes that run side by side.

`molecule test --all` runs the scenarios one after another, and one scenario
leaves most of a 2-core machine idle (it waits on servers, restarts, health
checks and its monitoring window). Each scenario has its own lab directory and
port span (molecule/*/molecule.yml), so two lanes can run at once: each lane
runs its scenarios one after another, a scenario's whole output goes to its log
and is printed in one piece when it ends, and a summary closes the run.

    python tests/molecule_lanes.py resume,legacy_source,rollback_after_cutover multihost,rollback,default

Every scenario under molecule/ runs: one that no lane names joins the lane
with the fewest. A lane goes on after a failed scenario; the exit status is 1
when any failed.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOG_DIR = REPO / ".cache" / "molecule-logs"


@dataclass
class Outcome:
    scenario: str
    lane: int
    returncode: int
    seconds: float
    log: Path

    @property
    def verdict(self) -> str:
        return "passed" if self.returncode == 0 else f"FAILED (exit {self.returncode})"


def scenarios(repo: Path = REPO) -> list[str]:
    """Every molecule scenario of the repo (a directory under molecule/ with a molecule.yml)."""
    return sorted(path.parent.name for path in (repo / "molecule").glob("*/molecule.yml"))


def plan_lanes(spec: list[str], known: list[str]) -> list[list[str]]:
    """Lanes from 'a,b c,d' arguments; every known scenario in exactly one lane. ValueError names a bad one."""
    lanes = [[name for name in arg.split(",") if name] for arg in spec] or [[]]
    named = [name for lane in lanes for name in lane]
    unknown = sorted(set(named) - set(known))
    if unknown:
        raise ValueError(f"no molecule scenario named {', '.join(unknown)} (scenarios: {', '.join(known)})")
    twice = sorted({name for name in named if named.count(name) > 1})
    if twice:
        raise ValueError(f"scenario(s) in more than one lane: {', '.join(twice)}")
    for name in known:
        if name not in named:
            min(lanes, key=len).append(name)
    return [lane for lane in lanes if lane]


def run_scenario(scenario: str, lane: int) -> Outcome:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{scenario}.log"
    started = time.monotonic()
    with log.open("w") as out:
        returncode = subprocess.call(["molecule", "test", "-s", scenario], cwd=REPO, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Outcome(scenario, lane, returncode, time.monotonic() - started, log)


def report(outcome: Outcome, lock: threading.Lock) -> None:
    with lock:
        print(f"---- molecule {outcome.scenario} (lane {outcome.lane}): {outcome.verdict} in {outcome.seconds:.0f}s; "
              f"its output ({outcome.log}):", flush=True)
        sys.stdout.write(outcome.log.read_text(errors="replace"))
        print(f"---- end of molecule {outcome.scenario}: {outcome.verdict}", flush=True)


def run_lanes(lanes: list[list[str]]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def lane_worker(number: int, names: list[str]) -> None:
        for name in names:
            outcome = run_scenario(name, number)
            report(outcome, lock)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=lane_worker, args=(number, names), name=f"lane-{number}")
               for number, names in enumerate(lanes, start=1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def summary(outcomes: list[Outcome], seconds: float) -> str:
    lines = [f"molecule: {len(outcomes)} scenario(s) in {seconds:.0f}s"]
    for outcome in sorted(outcomes, key=lambda item: (item.lane, item.scenario)):
        where = "" if outcome.returncode == 0 else f", log {outcome.log}"
        lines.append(f"  lane {outcome.lane}  {outcome.scenario:<24} {outcome.seconds:5.0f}s  {outcome.verdict}{where}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    try:
        lanes = plan_lanes(argv[1:], scenarios())
    except ValueError as exc:
        print(f"molecule_lanes: {exc}", file=sys.stderr)
        return 2
    print("molecule lanes: " + " | ".join(", ".join(lane) for lane in lanes), flush=True)
    started = time.monotonic()
    outcomes = run_lanes(lanes)
    print(summary(outcomes, time.monotonic() - started), flush=True)
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
