"""The preflight's settings check through a real ansible-playbook (no Chroma needed: it stops first).

Every wrong variable is named on its own line with what it got, in one failed task, before any
server is read; a correct set of settings passes the check and reaches the first read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from module_play import run_role_play

GOOD: dict[str, Any] = {
    "chroma_source": {"url": "http://127.0.0.1:9"}, "chroma_target": {"url": "http://127.0.0.1:10"},
    "chroma_expected_counts": {"docs": 3}, "chroma_batch_size": 500, "chroma_min_valid_ratio": 0.95,
    "chroma_routing": [], "chroma_schema_profile": None, "chroma_freeze_method": "none", "accept_no_freeze": "yes",
    "chroma_cutover_method": "proxy",
}


def run_preflight(tmp_path: Path, settings: dict[str, Any]) -> tuple[int, str]:
    proc = run_role_play(tmp_path, "chroma_preflight", {"chroma_runs_dir": str(tmp_path / "runs"), **settings})
    return proc.returncode, proc.stdout + proc.stderr


def test_every_wrong_setting_is_named_on_its_own_line(tmp_path: Path) -> None:
    wrong = dict(GOOD, chroma_target={"url": "http://127.0.0.1:9"}, chroma_batch_size=9000,
                 chroma_min_valid_ratio=1.5, chroma_freeze_method="proxy", chroma_cutover_method="apps")
    rc, out = run_preflight(tmp_path, wrong)
    assert rc != 0, out
    assert "TASK [chroma_preflight : Check the settings (one line per wrong variable)]" in out, out
    lines = [line.strip() for line in out.splitlines()]
    for start in ("chroma_target: is the same server as chroma_source; the migration needs a separate target",
                  "chroma_batch_size: must be an integer within 1..5461 (Chroma's max batch), got 9000",
                  "chroma_min_valid_ratio: must be a number within (0, 1], got 1.5",
                  "chroma_freeze_method: must be proxy (hosts in group chroma_proxies)",
                  "chroma_cutover_method: must be apps (with hosts in group chroma_apps) or proxy, got apps"):
        assert any(line.startswith(start) for line in lines), f"{start}\n---\n{out}"
    for right in ("chroma_source:", "chroma_expected_counts:", "chroma_routing:", "chroma_runs_dir:"):
        assert not any(line.startswith(right) for line in lines), out
    assert "Read the source's collections and counts" not in out, out    # stopped before any read


def test_right_settings_pass_the_check(tmp_path: Path) -> None:
    rc, out = run_preflight(tmp_path, GOOD)
    assert rc != 0, out                                                   # port 9 answers nothing
    assert "TASK [chroma_preflight : Read the source's collections and counts]" in out, out   # passed the check
    assert "(task: Read the source's collections and counts)" in out, out
