#!/usr/bin/env python3
"""Run one of the repo's playbooks through ansible-runner's Python API; print what happened as JSON.

The molecule scenarios use it where a playbook is *expected* to fail (an automatic
rollback), where a run must be killed half way (resume), or where a second lab is
needed (the uninterrupted reference run). Assertions are made on runner events and
stats, never on scraped stdout.

    run_playbook.py --repo DIR --playbook migrate.yml --private-dir DIR \
        [--extra-vars JSON] [--tags T1,T2] [--kill-mid-import --target URL --expect-total N]

Output (stdout, one JSON object):
  status, rc, duration_s, stats {changed, failures, ok, ...: {host: n}},
  failed_tasks [{task, role, msg}], changed_tasks [task names],
  last_task_started, kill (only with --kill-mid-import: when, what, target count).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import ansible_runner
import psutil

KILL_TAG = "CHROMA_RUNBOOK_MOLECULE_KILL_TAG"


def event_summary(runner: Any) -> dict[str, Any]:
    """Failed and changed tasks and the last task started, from runner events."""
    failed, changed, last_started = [], [], None
    for event in runner.events:
        data = event.get("event_data", {})
        kind = event.get("event")
        if kind == "playbook_on_task_start":
            last_started = data.get("task")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            res = data.get("res", {})
            failed.append({"task": data.get("task"), "role": data.get("role"),
                           "msg": str(res.get("msg") or res.get("stderr") or res)[:2000]})
        elif kind == "runner_on_ok" and data.get("res", {}).get("changed"):
            changed.append(data.get("task"))
    return {"failed_tasks": failed, "changed_tasks": changed, "last_task_started": last_started}


def target_total(url: str) -> int:
    import chromadb
    from chromadb.config import Settings

    parts = urlsplit(url)
    api = chromadb.HttpClient(host=parts.hostname, port=parts.port, settings=Settings(anonymized_telemetry=False))
    return sum(api.get_collection(c.name).count() for c in api.list_collections())


def tagged_processes(tag: str) -> list[psutil.Process]:
    """Every process of ours carrying the tag in its environment (ansible-playbook, workers, module, async wrapper)."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "uids"]):
        if proc.pid == me or proc.info["uids"] is None or proc.info["uids"].real != os.getuid():
            continue
        try:
            if proc.environ().get(KILL_TAG) == tag:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def command_line(proc: psutil.Process) -> Optional[str]:
    """The process's command line, or None once it has ended (ansible's forked workers come and go)."""
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None


def is_module_process(cmdline: str) -> bool:
    """The migration module itself (or the async wrapper running it), not ansible-playbook."""
    return "AnsiballZ_chroma_migrate" in cmdline or ("async_wrapper" in cmdline and "chroma_migrate" in cmdline)


def kill_mid_import(tag: str, target: str, expect_total: int, timeout: float, log_dir: Path) -> dict[str, Any]:
    """Once the module runs and the target holds some but not most records, SIGKILL every tagged process."""
    deadline = time.monotonic() + timeout
    high = max(2, int(expect_total * 0.6))
    seen = 0
    victims: dict[psutil.Process, str] = {}
    while time.monotonic() < deadline:
        try:
            seen = target_total(target)
        except Exception:  # noqa: BLE001 - the target may not have collections yet
            seen = 0
        if seen >= high:
            return {"killed": False, "reason": f"import passed {high} records before it could be killed", "target_total": seen}
        if seen >= 1:
            victims = {p: line for p in tagged_processes(tag) if (line := command_line(p)) is not None}
            if any(is_module_process(line) for line in victims.values()):
                break
        time.sleep(0.05)
    else:
        return {"killed": False, "reason": f"no import seen within {timeout}s", "target_total": seen}
    described = [{"pid": p.pid, "cmdline": line[:300]} for p, line in victims.items()]
    (log_dir / "kill_victims.json").write_text(json.dumps(described, indent=1), encoding="utf-8")
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(list(victims), timeout=10)
    survivors = [p.pid for p in tagged_processes(tag)]
    return {"killed": True, "target_total": seen, "processes": described, "survivors": survivors,
            "module_killed": any(is_module_process(d["cmdline"]) for d in described)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="repo root (ansible.cfg, inventory/lab.yml)")
    parser.add_argument("--playbook", required=True, help="playbook path relative to the repo")
    parser.add_argument("--private-dir", required=True, help="ansible-runner private data dir (artifacts)")
    parser.add_argument("--extra-vars", default="{}", help="JSON object of extra vars")
    parser.add_argument("--tags", help="only these tags (comma separated), as ansible-playbook --tags")
    parser.add_argument("--kill-mid-import", action="store_true")
    parser.add_argument("--target", help="target Chroma URL watched for --kill-mid-import")
    parser.add_argument("--expect-total", type=int, default=0, help="records the full import would write")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    repo = Path(args.repo).resolve()
    private = Path(args.private_dir).resolve()
    private.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex
    venv_bin = str(Path(sys.executable).parent)
    envvars = {
        "ANSIBLE_CONFIG": str(repo / "ansible.cfg"),
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        KILL_TAG: tag,
    }
    started = time.monotonic()
    thread, runner = ansible_runner.run_async(
        private_data_dir=str(private),
        project_dir=str(repo),
        playbook=str(repo / args.playbook),
        inventory=str(repo / "inventory" / "lab.yml"),
        extravars=json.loads(args.extra_vars),
        envvars=envvars,
        quiet=True,
        timeout=int(args.timeout),
        **({"tags": args.tags} if args.tags else {}),
    )
    kill: dict[str, Any] | None = None
    if args.kill_mid_import:
        if not args.target or args.expect_total <= 0:
            parser.error("--kill-mid-import needs --target and --expect-total")
        kill = kill_mid_import(tag, args.target, args.expect_total, args.timeout, private)
    thread.join()
    thread_died = runner.status in ("unstarted", "running")
    if thread_died:  # ansible-runner's thread can die when its playbook is SIGKILLed; its events
        runner.status = "failed"  # stay readable, but runner.events would wait for "running" to end
    stdout_file = Path(runner.config.artifact_dir) / "stdout"
    out: dict[str, Any] = {
        "status": runner.status,
        "rc": runner.rc,
        "duration_s": round(time.monotonic() - started, 2),
        "stats": runner.stats or {},
        "stdout_file": str(stdout_file),
        "stdout_tail": stdout_file.read_text(errors="replace")[-3000:] if stdout_file.is_file() else "",
        **event_summary(runner),
    }
    if kill is not None:
        out["kill"] = kill
    if thread_died:
        out["runner_thread_died"] = True
    json.dump(out, sys.stdout, sort_keys=True, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
