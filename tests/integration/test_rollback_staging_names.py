"""Each name rule lives once, in the engine (module_utils/chroma_runbook/run/names.py): roles ask
``chroma_run action=paths`` (or read the paths open/find return) for staging-collection
prefixes, checkpoint files and freeze files, and never rebuild them in Jinja."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from chroma_runbook.run.names import FREEZE_FILES, checkpoint_file, staging_name, staging_prefix
from migrate_play import REPO, ansible_env


def adhoc(*args: str) -> dict:
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible"), "localhost", "-c", "local", *args],
                          env={**ansible_env(), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}, cwd=str(REPO),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.split("=>", 1)[1])


def engine_paths(runs_dir: Path, run_id: str) -> dict:
    return adhoc("-m", "chroma_run", "-a", f"action=paths runs_dir={runs_dir} run_id={run_id}")


def test_chroma_run_paths_gives_the_engines_names_and_writes_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    got = engine_paths(runs, "r1")
    assert got["changed"] is False and not runs.exists()
    assert got["paths"]["checkpoint_file"] == checkpoint_file(str(runs / "r1" / "checkpoint"), "r1")
    assert got["paths"]["staging_prefix"] == staging_prefix("r1")
    assert got["freeze_files"] == FREEZE_FILES


def test_no_role_or_playbook_rebuilds_an_engine_name_rule() -> None:
    rules = ["hash('sha1')", "staging-", ".checkpoint.json", *FREEZE_FILES.values()]
    offenders = []
    for path in sorted([*REPO.glob("roles/**/*.yml"), *REPO.glob("playbooks/**/*.yml"), *REPO.glob("*.yml")]):
        rel = str(path.relative_to(REPO))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.lstrip().startswith("#") and any(rule in line for rule in rules):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []
