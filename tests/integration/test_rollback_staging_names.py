"""rollback.yml finds an interrupted migration's staging collections by the same name rule
chroma_migrate uses (the role's Jinja expression against module_utils' staging_prefix)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from chroma_runbook.staging import staging_name, staging_prefix
from migrate_play import REPO, ansible_env


@pytest.mark.parametrize("run_id", ["20261121T020000Z-ab12", "migrate-3f292fc04119"])
def test_rollback_selects_exactly_the_runs_staging_collections(tmp_path: Path, run_id: str) -> None:
    listed = [{"name": staging_name(run_id, "sergio_corpus")}, {"name": staging_name(run_id, "a.b-c")},
              {"name": staging_name("another-run", "sergio_corpus")}, {"name": "sergio_corpus"},
              {"name": "staging-0000000000-x"}]
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"chroma_rollback_run": {"run_id": run_id},
                                 "chroma_rollback_target_list": {"json": listed}}))
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible"), "localhost", "-c", "local", "-m", "ansible.builtin.debug",
         "-a", "var=chroma_rollback_staging", "-e", f"@{REPO / 'roles/chroma_rollback/vars/main.yml'}",
         "-e", f"@{extra}"],
        env={**ansible_env(), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}, cwd=str(REPO), capture_output=True,
        text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    body = proc.stdout.split("=>", 1)[1]
    selected = json.loads(body)["chroma_rollback_staging"]
    assert selected == [staging_name(run_id, "sergio_corpus"), staging_name(run_id, "a.b-c")]
    assert all(name.startswith(staging_prefix(run_id)) for name in selected)
