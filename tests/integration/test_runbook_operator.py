"""What the operator sees and sets is never misleading (issue 15), on a real lab.

One small lab (scale 0.2) for the module, driven by real ansible-playbook runs:
the dry run says "would" and writes nothing but its measurement; the project's
settings load for an inventory kept anywhere, and the preflight refuses unset
ones; the confirmation prompt, answered on a pty, says what is about to happen.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from lab.chroma_server import free_port_base
from lab.layout import PORT_SPAN
from runbook_lab import REPO, Lab, PlaybookRun, run_playbook

pytestmark = pytest.mark.slow

TARGETS = ["sergio_personality", "sergio_rhetorical", "sergio_humor", "sergio_corpus"]
PROMPT = r"Type yes to go on"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("runbook-operator"), free_port_base(13000, 14000, PORT_SPAN), scale=0.2).up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def counts(lab: Lab) -> dict[str, int]:
    """What the scaled source holds (the operator's own expected counts)."""
    return lab.counts(lab.source)


@pytest.fixture(scope="module")
def front_files(lab: Lab) -> dict[str, str]:
    """The nginx snippets and app configs before anything ran."""
    return _front_files(lab)


@pytest.fixture(scope="module")
def dry_run(lab: Lab, counts: dict[str, int], front_files: dict[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> PlaybookRun:
    return run_playbook(lab, "migrate.yml", tmp_path_factory.mktemp("dry"), {"chroma_expected_counts": counts},
                        cmdline="--check --diff")


def _front_files(lab: Lab) -> dict[str, str]:
    files = sorted((lab.root / "nginx").glob("*.d/*.conf")) + sorted((lab.root / "apps").glob("*/app.env"))
    return {str(f.relative_to(lab.root)): f.read_text() for f in files}


def _messages(run: PlaybookRun) -> list[str]:
    """Every debug message of the run, one string per line of a list message."""
    out: list[str] = []
    for event in run.events:
        if event.get("event") != "runner_on_ok":
            continue
        msg = event["event_data"].get("res", {}).get("msg")
        if isinstance(msg, list):
            out += [str(m) for m in msg]
        elif isinstance(msg, str):
            out.append(msg)
    return out


def _inventory_elsewhere(where: Path, counts: dict[str, int], **extra: Any) -> Path:
    """The lab inventory as an operator keeps it: another directory, no group_vars beside it."""
    inventory = yaml.safe_load((REPO / "inventory" / "lab.yml").read_text())
    inventory["all"]["vars"].update(chroma_expected_counts=counts, **extra)
    where.mkdir(parents=True, exist_ok=True)
    path = where / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    assert not (where / "group_vars").exists()
    return path


def test_dry_run_says_would_and_writes_nothing(lab: Lab, counts: dict[str, int], front_files: dict[str, str],
                                               dry_run: PlaybookRun) -> None:
    assert dry_run.status == "successful", dry_run.explain()
    said = _messages(dry_run)
    total = sum(counts.values())
    run_id = next(m for m in said if m.startswith("DRY RUN: would open a new run ")).split()[7]
    run_dir = lab.runs_dir / run_id

    snapshot = [m for m in said if "snapshot" in m and "records" in m and "would" in m]
    assert any(m.startswith(f"would snapshot {total} records (~") and f"MiB of embeddings) in 6 collections to {run_dir}/snapshot"
               in m for m in snapshot), said
    assert any(m.startswith(f"would refuse writes at {lab.front_door} ") for m in said), said
    assert any(m.startswith("DRY RUN: would write ") and f"records to {lab.target}: " in m for m in said), said
    config = lab.root / "apps" / "app_chatbot" / "app.env"
    assert f"app_chatbot: would set CHROMADB_URL: {lab.front_door} → {lab.target} in {config} and restart app_chatbot " \
           "(supervisor), then wait for its health" in " ".join(said), said
    config = lab.root / "apps" / "app_openwebui" / "app.env"  # Open WebUI's keys: the port changes, headers masked
    assert any(m.startswith(f"app_openwebui: would set CHROMA_HTTP_PORT: {lab.port_base} → {lab.port_base + 2}, "
                            "CHROMA_HTTP_HEADERS: (not set) → ********")
               and f"in {config} and restart app_openwebui (supervisor)" in m for m in said), said
    # nothing reads as if it had happened
    assert not [m for m in said if "serves from" in m or m.startswith(("Snapshot ", "Writes frozen", "MIGRATED"))], said
    summary = dry_run.task_results("Print the dry run's summary")[0]["msg"]
    assert summary[0].startswith(f"DRY RUN of run {run_id}: nothing was frozen"), summary
    assert f"({run_dir} was not created), no reports and no summary.json" in summary[0], summary
    assert any("would snapshot" in line for line in summary) and any("would set CHROMADB_URL" in line for line in summary)
    assert not [line for line in summary if "lab-token" in line], summary

    # nothing was written but the measurement: no run directory, no summary.json, configs and snippets as they were
    assert sorted(p.name for p in lab.runs_dir.iterdir()) == ["throughput.json"]
    measured = json.loads((lab.runs_dir / "throughput.json").read_text())["dry_run"]
    assert measured["run_id"] == run_id and measured["records"] == total and measured["records_per_s"] > 0
    assert set(measured["targets"]) == set(TARGETS)
    assert _front_files(lab) == front_files
    assert lab.counts(lab.target) == {}


def test_settings_apply_wherever_the_inventory_lives(lab: Lab, counts: dict[str, int], tmp_path: Path) -> None:
    runs = {"chroma_runs_dir": str(tmp_path / "runs")}
    inventory = _inventory_elsewhere(tmp_path / "inventory-repo", counts)

    # the project's knobs load beside playbooks/; the inventory's own expected counts win over the project's
    # (the project expects the full 8,832-record dataset, this lab holds a fifth of it)
    ok = run_playbook(lab, "playbooks/preflight.yml", tmp_path / "ok", runs, inventory=inventory)
    assert ok.status == "successful", ok.explain()
    assert sum(counts.values()) < 8832

    # a playbook that does not sit beside the project's settings: the preflight names what is unset
    lone = tmp_path / "elsewhere" / "preflight.yml"
    lone.parent.mkdir()
    shutil.copy(REPO / "playbooks" / "preflight.yml", lone)
    refused = run_playbook(lab, str(lone), tmp_path / "refused", runs, inventory=inventory)
    assert refused.status == "failed", refused.explain()
    assert [t for t, _ in refused.failed_tasks] == ["Stop when a project setting is not set at all"], refused.failed_tasks
    message = refused.failed_tasks[0][1]
    assert message.startswith("SETTINGS NOT SET: chroma_routing, chroma_schema_profile."), message
    assert "chroma_routing: [] and chroma_schema_profile: null" in message

    # a plain copy, asked for explicitly in the inventory, is what the window then announces
    plain = _inventory_elsewhere(tmp_path / "inventory-plain", counts, chroma_routing=[], chroma_schema_profile=None)
    asked = run_playbook(lab, "migrate.yml", tmp_path / "plain", runs, inventory=plain, answers={PROMPT: "no"})
    assert asked.status == "failed", asked.explain()
    assert [msg for _, msg in asked.failed_tasks] == ["Not confirmed: nothing was frozen or changed."], asked.failed_tasks
    plan = asked.task_results("Say what is about to happen")[0]["msg"]
    assert "  after routing: the same collections (a plain copy: chroma_routing is []); no schema profile" in " ".join(plan), plan


def test_confirmation_prompt_says_what_is_about_to_happen(lab: Lab, counts: dict[str, int], front_files: dict[str, str],
                                                          dry_run: PlaybookRun, tmp_path: Path) -> None:
    assert dry_run.status == "successful", dry_run.explain()
    measured = json.loads((lab.runs_dir / "throughput.json").read_text())["dry_run"]
    asked = run_playbook(lab, "migrate.yml", tmp_path, {"chroma_expected_counts": counts}, answers={PROMPT: "no"})
    assert asked.status == "failed", asked.explain()
    assert [msg for _, msg in asked.failed_tasks] == ["Not confirmed: nothing was frozen or changed."], asked.failed_tasks

    plan = asked.task_results("Say what is about to happen")[0]["msg"]
    text = "\n".join(plan)
    assert plan[0].startswith(f"About to FREEZE writes at {lab.front_door} and migrate (run "), plan
    assert f"  source:        {lab.source}" in plan and f"  target:        {lab.target}" in plan, plan
    for name, count in counts.items():
        assert f"{name} {count}" in text, (name, plan)
    assert f"({sum(counts.values())} records)" in text
    routed = ", ".join(f"{t} ~{measured['targets'][t]}" for t in TARGETS)
    assert f"  after routing: {routed} (4 routing rules, counts from the dry run); schema profile sergio-12-field v1" in plan
    estimate = [line for line in plan if line.startswith("  estimated write freeze: at least ~")]
    assert estimate and f"the dry run {measured['run_id']} read and checked {measured['records']} records" in estimate[0], plan
    assert "  then cut over: app_openwebui, app_chatbot" in plan
    # the same words were the prompt the operator answered (on a pty), and nothing was frozen
    assert plan[0] in asked.stdout and estimate[0].strip() in " ".join(asked.stdout.split())
    assert _front_files(lab) == front_files
