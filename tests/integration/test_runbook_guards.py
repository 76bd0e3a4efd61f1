"""Issue 10 on a real lab: the guards that keep a rollback or a recovery from destroying data.

One lab (scale 0.2), real nginx and real ansible-playbook runs. In file order: a run_id the
runs directory does not know changes nothing (point 4); what chroma_migrate would refuse stops
the run before the freeze (7); the freeze's nginx handling (8); the migration lock stops a
rollback (2); one run's rollback keeps another run's freeze, and a proxy cutover refuses to lift it (6);
a connection's token is never printed and a rollback works with a `path:` target (10); a whole
migration and rollback leave only private files and the app's config with its own mode (9).
"""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from chroma_runbook.run import run_state as rs
from chroma_runbook.io.connection import ConnectionSpec
from chroma_runbook.migrate.migration import Migration
from chroma_runbook.migrate.migration_options import MigrationOptions
from chroma_runbook.run.run_lock import LockHeld, target_lock_path
from lab.layout import LabLayout
from lab.processes import start_nginx, stop_nginx
from runbook_lab import REPO, Lab, free_port_base, http, run_playbook

pytestmark = pytest.mark.slow

HOLD = """
import sys, time
sys.path.insert(0, {mu!r})
from chroma_runbook.run.run_lock import RunLock
RunLock("", {run_id!r}, {path!r}).acquire()
print("held", flush=True)
time.sleep(300)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("runbook-guards"), free_port_base(), scale=0.2).up()
    try:
        yield lab
    finally:
        lab.down()


def freeze_files(lab: Lab) -> list[Path]:
    return sorted((lab.root / "nginx" / "server.d").glob("chroma_runbook*")) + sorted(
        (lab.root / "nginx" / "http.d").glob("chroma_runbook*"))


def writes_open(lab: Lab, probe_id: str) -> bool:
    status, body = lab.front_door_add("openwebui_docs", probe_id)
    if status in (200, 201):
        lab.source_delete("openwebui_docs", probe_id)
        return True
    assert status == 503 and body["error"] == "WritesFrozen", (status, body)
    return False


def open_run(lab: Lab, run_id: str) -> None:
    rs.open_run(lab.runs_dir, run_id, label="test")


@pytest.fixture
def lock_holder(lab: Lab) -> Iterator[subprocess.Popen[str]]:
    """A live process holding the target's migration lock, as chroma_migrate does while it writes."""
    path = target_lock_path(str(lab.runs_dir / "locks"), ConnectionSpec.from_dict({"url": lab.target}))
    code = HOLD.format(mu=str(REPO / "module_utils"), run_id="writer-run", path=path)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


# point 4 (last sentence): an unknown run_id fails before anything changes
def test_a_playbook_given_an_unknown_run_id_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    run = run_playbook(lab, "playbooks/freeze.yml", tmp_path / "freeze", {"run_id": "no-such-run"})
    assert run.status == "failed" and run.total("changed") == 0, run.explain()
    assert "no-such-run" in " ".join(msg for _, msg in run.failed_tasks), run.failed_tasks
    assert freeze_files(lab) == [] and writes_open(lab, "guards-unknown-run")
    run = run_playbook(lab, "playbooks/snapshot.yml", tmp_path / "snapshot", {"run_id": "no-such-run"})
    assert run.status == "failed" and run.total("changed") == 0, run.explain()
    assert not (lab.runs_dir / "no-such-run").exists()


# point 7: what chroma_migrate refuses stops the run in the preflight, before the freeze
@pytest.mark.parametrize("case", ["routing_regex", "run_id"])  # a schema typo: the unit tests
def test_what_the_migration_refuses_stops_before_the_freeze(lab: Lab, tmp_path: Path, case: str) -> None:
    extra: dict[str, object] = {"confirm": "yes", "chroma_expected_counts": lab.counts(lab.source)}
    if case == "routing_regex":
        extra["chroma_routing"] = [{"name": "broken", "target": "openwebui_core", "match": {"document_regex": "(unclosed"}}]
    else:
        extra["run_id"] = "bad id $(touch pwned)\n"
    runs_before = set(os.listdir(lab.runs_dir)) if lab.runs_dir.exists() else set()
    run = run_playbook(lab, "migrate.yml", tmp_path, extra)
    assert run.status == "failed", run.explain()
    assert not any(p.startswith("(2/7)") for p in run.plays), run.plays
    assert freeze_files(lab) == [] and writes_open(lab, f"guards-preflight-{case}")
    assert lab.counts(lab.target) == {}
    runs_after = set(os.listdir(lab.runs_dir)) if lab.runs_dir.exists() else set()
    for run_id in runs_after - runs_before - {"latest", "locks"}:
        state = json.loads((lab.runs_dir / run_id / "state.json").read_text())
        assert not {"freeze", "snapshot", "migrate"} & set(state["steps"]), state["steps"]
        # the preflight role recorded its own failure, naming the task (issue 11 point 4)
        preflight = state["steps"]["preflight"]
        assert preflight["outcome"] == "failed" and preflight["started_at"] and preflight["ended_at"], preflight
        assert "(task: Dry run of the migration's options" in preflight["message"], preflight
        assert not (lab.runs_dir / run_id / "snapshot").exists()
    if case == "run_id":
        assert runs_after - runs_before <= {"locks"}, runs_after - runs_before
        assert not (REPO / "pwned").exists()


# a wrong variable of a step that runs under the freeze (the controller's snapshot, an app's cutover) stops
# the run in SETTINGS, before the freeze, rather than in a rollback from inside it
@pytest.mark.parametrize("variable, value", [("chroma_snapshot_page_size", "many"),
                                             ("chroma_cutover_health_timeout_s", "soon")])
def test_a_wrong_variable_of_a_step_under_the_freeze_stops_the_run_before_it(lab: Lab, tmp_path: Path, variable: str,
                                                                              value: str) -> None:
    extra = {"confirm": "yes", "chroma_expected_counts": lab.counts(lab.source), variable: value}
    run = run_playbook(lab, "migrate.yml", tmp_path, extra)
    assert run.status == "failed", run.explain()
    assert any(p.startswith("SETTINGS") for p in run.plays), run.plays
    assert not any(p.startswith("(2/7)") or p.startswith("PRE-COPY") for p in run.plays), run.plays
    messages = " ".join(msg for _, msg in run.failed_tasks)
    assert variable in messages and "unable to convert" in messages, run.failed_tasks
    assert freeze_files(lab) == [] and writes_open(lab, f"guards-settings-{variable}")
    assert lab.counts(lab.target) == {}


# point 8: a "$" in the message is not an nginx variable; a failed reload leaves no freeze behind
def test_freeze_message_with_a_dollar_and_a_reload_that_fails(lab: Lab, tmp_path: Path) -> None:
    message = "Writes frozen; the $price of safety, 100% {sure} \"quoted\" it's fine"
    run = run_playbook(lab, "playbooks/freeze.yml", tmp_path / "freeze", {"chroma_readonly_message": message})
    assert run.status == "successful", run.explain()
    status, body = lab.front_door_add("openwebui_docs", "guards-dollar")
    assert status == 503 and body == {"error": "WritesFrozen", "message": message}, body
    assert run_playbook(lab, "playbooks/unfreeze.yml", tmp_path / "unfreeze").status == "successful"

    layout = LabLayout.create(lab.root, lab.port_base)
    assert stop_nginx(layout) is not None
    try:
        run = run_playbook(lab, "playbooks/freeze.yml", tmp_path / "freeze-no-nginx")
        assert run.status == "failed", run.explain()
        assert any("reload" in msg and "NOT frozen" in msg for _, msg in run.failed_tasks), run.failed_tasks
        assert freeze_files(lab) == []
    finally:
        start_nginx(layout)
    assert writes_open(lab, "guards-after-reload-failure")


# point 2: the lock is the authority; rollback refuses while a live process holds it
def test_rollback_refuses_while_a_migration_holds_the_lock(lab: Lab, tmp_path: Path,
                                                           lock_holder: subprocess.Popen[str]) -> None:
    open_run(lab, "guard-lock")
    assert run_playbook(lab, "playbooks/freeze.yml", tmp_path / "freeze", {"run_id": "guard-lock"}).status == "successful"
    state_before = (lab.runs_dir / "guard-lock" / "state.json").read_text()
    run = run_playbook(lab, "rollback.yml", tmp_path / "refused", {"run_id": "guard-lock"})
    assert run.status == "failed" and run.total("changed") == 0, run.explain()
    refusal = " ".join(msg for _, msg in run.failed_tasks)
    assert "REFUSED" in refusal and f"PID {lock_holder.pid}" in refusal and socket.gethostname() in refusal, refusal
    assert (lab.runs_dir / "guard-lock" / "state.json").read_text() == state_before
    assert not writes_open(lab, "guards-lock-frozen")

    lock_holder.kill()
    lock_holder.wait()
    run = run_playbook(lab, "rollback.yml", tmp_path / "after", {"run_id": "guard-lock"})
    assert run.status == "successful", run.explain()
    assert writes_open(lab, "guards-lock-open")


# point 6: the lock is per target: a second run (another run directory) into the same target is refused
def test_a_second_run_into_the_same_target_is_refused(lab: Lab, tmp_path: Path,
                                                      lock_holder: subprocess.Popen[str]) -> None:
    second = MigrationOptions(source={"url": lab.source}, target={"url": lab.target}, run_id="guard-second",
                              checkpoint_dir=str(tmp_path / "guard-second" / "checkpoint"), lock_dir=str(lab.runs_dir / "locks"))
    with pytest.raises(LockHeld) as err:
        Migration(second).run()
    assert f"PID {lock_holder.pid}" in str(err.value) and "run_id writer-run" in str(err.value)
    assert lab.counts(lab.target) == {}


# point 6: the freeze files carry their owners; one run's rollback never lifts another run's freeze
def test_one_runs_rollback_keeps_another_runs_freeze(lab: Lab, tmp_path: Path) -> None:
    for run_id in ("guard-a", "guard-b"):
        open_run(lab, run_id)
        assert run_playbook(lab, "playbooks/freeze.yml", tmp_path / run_id, {"run_id": run_id}).status == "successful"
    run = run_playbook(lab, "rollback.yml", tmp_path / "rollback-a", {"run_id": "guard-a"})
    assert run.status == "successful", run.explain()
    assert not writes_open(lab, "guards-b-still-frozen")
    gate = (lab.root / "nginx" / "server.d" / "chroma_runbook_freeze_gate.conf").read_text()
    assert "chroma-runbook freeze owners: guard-b\n" in gate, gate
    run = run_playbook(lab, "playbooks/unfreeze.yml", tmp_path / "unfreeze-b", {"run_id": "guard-b"})
    assert run.status == "successful", run.explain()
    assert freeze_files(lab) == [] and writes_open(lab, "guards-all-released")


# point 6: a proxy cutover would lift the front door's freeze for every run: it refuses while another holds it
def test_a_proxy_cutover_refuses_while_another_run_holds_the_freeze(lab: Lab, tmp_path: Path) -> None:
    open_run(lab, "guard-other")
    assert run_playbook(lab, "playbooks/freeze.yml", tmp_path / "freeze", {"run_id": "guard-other"}).status == "successful"
    upstream = sorted((lab.root / "nginx").rglob("*upstream*.conf"))
    before = {p: p.read_text() for p in upstream}
    run = run_playbook(lab, "migrate.yml", tmp_path / "migrate", {
        "confirm": "yes", "run_id": "guard-proxy", "chroma_cutover_method": "proxy",
        "chroma_expected_counts": lab.counts(lab.source)})
    assert run.status == "failed", run.explain()
    messages = " ".join(msg for _, msg in run.failed_tasks)
    assert "CUTOVER REFUSED" in messages and "guard-other" in messages, run.failed_tasks
    assert upstream and {p: p.read_text() for p in upstream} == before, "the refused cutover moved the upstream"
    gate = (lab.root / "nginx" / "server.d" / "chroma_runbook_freeze_gate.conf").read_text()
    assert "chroma-runbook freeze owners: guard-other\n" in gate, gate
    assert not writes_open(lab, "guards-other-still-frozen")
    run = run_playbook(lab, "playbooks/unfreeze.yml", tmp_path / "unfreeze", {"run_id": "guard-other"})
    assert run.status == "successful", run.explain()
    assert freeze_files(lab) == [] and writes_open(lab, "guards-released-after-refusal")


# point 10: the preflight prints a connection's url, never its headers or password
def test_the_preflight_never_prints_a_connections_secrets(lab: Lab, tmp_path: Path) -> None:
    target = {"url": "chroma-new.example:8000", "headers": {"Authorization": "Bearer tok-SECRET-1"}}
    run = run_playbook(lab, "migrate.yml", tmp_path, {"confirm": "yes", "chroma_target": target,
                                                       "chroma_expected_counts": lab.counts(lab.source)})
    assert run.status == "failed", run.explain()
    assert "chroma-new.example:8000" in run.stdout
    assert "tok-SECRET-1" not in run.stdout and "tok-SECRET-1" not in json.dumps(run.events)


# point 10: the rollback reads and drops through modules, so a `path:` target works (no uri on a url)
def test_rollback_works_with_a_path_target(lab: Lab, tmp_path: Path) -> None:
    open_run(lab, "guard-path")
    target = {"path": str(tmp_path / "target-persist"), "headers": {"Authorization": "Bearer tok-SECRET-2"}}
    run = run_playbook(lab, "rollback.yml", tmp_path / "rollback", {"run_id": "guard-path", "chroma_target": target})
    assert run.status == "successful", run.explain()
    assert "tok-SECRET-2" not in run.stdout


# point 9: whatever the umask, a run leaves private files, and the app's config comes back with its own mode
def test_a_run_and_its_rollback_leave_only_private_files(lab: Lab, tmp_path: Path) -> None:
    env = lab.root / "apps" / "app_chatbot" / "app.env"
    env.chmod(0o600)
    owner = env.stat().st_uid
    old = os.umask(0)
    try:
        run = run_playbook(lab, "migrate.yml", tmp_path / "migrate", {"confirm": "yes",
                                                                      "chroma_expected_counts": lab.counts(lab.source)})
        assert run.status == "successful", run.explain()
        assert lab.app_health("app_chatbot")["chroma_url"] == lab.target
        back = run_playbook(lab, "rollback.yml", tmp_path / "rollback")
    finally:
        os.umask(old)
    assert back.status == "successful", back.explain()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and env.stat().st_uid == owner
    assert lab.app_health("app_chatbot")["chroma_url"] == lab.front_door
    run_dir = lab.latest_run()
    assert (run_dir / "rejects.jsonl").is_file() and (run_dir / "backups" / "app_chatbot" / "app.env").is_file()
    loose = {str(p.relative_to(lab.runs_dir)): oct(stat.S_IMODE(p.stat().st_mode))
             for p in [run_dir, lab.runs_dir / "locks", *run_dir.rglob("*"), *(lab.runs_dir / "locks").iterdir()]
             if stat.S_IMODE(p.stat().st_mode) != (0o700 if p.is_dir() else 0o600)}
    assert loose == {}, loose
