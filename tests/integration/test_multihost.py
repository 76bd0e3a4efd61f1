"""The runbook over SSH on the multi-host lab: proxy and app hosts in network namespaces.

One lab for the module (lab/netns.py, a small dataset). The happy path over SSH (migrate.yml
cuts both apps over, rollback.yml puts them back) is the molecule scenario `multihost`; here:
1. migrate.yml with a fault: app_chatbot's link goes down right after its config was edited,
   in the middle of the cutover. Every task on the proxy and the apps ran over SSH (become),
   each host's own sshd saw the logins; the config backups came back to the controller before
   the edit. The run rolls back what it can reach (app_openwebui), names app_chatbot as
   unreachable in its output and in the rollback report, and keeps writes frozen (an app that
   may still serve from the target must not see the source open for writes);
2. once the link is back, rollback.yml (drop_target) restores app_chatbot, opens writes and
   drops what the run wrote to the target.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from lab import netns
from runbook_lab import DB_API, Lab, PlaybookRun, WebhookReceiver, free_port_base, http, milestones, run_playbook

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")]

SCALE = 0.05


class HostsLab(Lab):
    """The multi-host lab, seen through the Lab helpers (URLs from its lab.json)."""

    @property
    def map(self) -> dict[str, Any]:
        return json.loads((self.root / "lab.json").read_text())

    @property
    def front_door(self) -> str:
        return str(self.map["urls"]["front_door"])

    @property
    def source(self) -> str:
        return str(self.map["urls"]["source"])

    @property
    def target(self) -> str:
        return str(self.map["urls"]["target"])

    @property
    def apps(self) -> dict[str, str]:
        return {app: str(self.map["urls"][app]) for app in ("app_openwebui", "app_chatbot")}

    def app_config(self, name: str) -> str:
        return Path(self.map["apps"][name]["env"]).read_text()

    def playbook(self, playbook: str, private: Path, extravars: dict[str, Any] | None = None) -> PlaybookRun:
        # the port base is in lab.json; the inventory reads everything from there
        return run_playbook(self, playbook, private, {"chroma_lab_dir": str(self.root), **(extravars or {})},
                            inventory="lab-hosts.yml")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostsLab]:
    root = tmp_path_factory.mktemp("mh")
    lab = HostsLab(root, free_port_base())
    try:
        netns.up(root, lab.port_base, scale=SCALE)
        yield lab
    finally:
        netns.down(root)  # processes, namespaces and the controller's link, even after a failure
    assert netns.existing_namespaces(netns.topology(root).prefix) == []


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver(tmp_path_factory.mktemp("hooks")).start()
    try:
        yield hooks
    finally:
        hooks.stop()


def _ssh_logins(lab: HostsLab, host: str) -> list[str]:
    """Logins with the lab's key that the host's own sshd accepted (its log, LogLevel VERBOSE)."""
    log = Path(lab.map["hosts"][host]["dir"]) / "logs" / "sshd.log"
    return [line for line in log.read_text().splitlines() if "Accepted publickey" in line]


def _cut_off_when_edited(lab: HostsLab, app: str, stop: threading.Event, seen: dict[str, float]) -> None:
    """Take ``app``'s link down as soon as the cutover has rewritten its config (the host shares our disk)."""
    path, target_port = Path(lab.map["apps"][app]["env"]), lab.target.rsplit(":", 1)[1]
    while not stop.is_set():
        if target_port in path.read_text():
            netns.set_link(netns.topology(lab.root), app, "down")
            seen["down_at"] = time.monotonic()
            return
        time.sleep(0.05)


def test_an_app_host_lost_mid_cutover_is_named_and_writes_stay_frozen(lab: HostsLab, tmp_path: Path,
                                                                      receiver: WebhookReceiver) -> None:
    originals = {name: lab.app_config(name) for name in lab.apps}
    stop, seen = threading.Event(), {}
    watcher = threading.Thread(target=_cut_off_when_edited, args=(lab, "app_chatbot", stop, seen), daemon=True)
    watcher.start()
    try:
        run = lab.playbook("migrate.yml", tmp_path, {"confirm": "yes", "chroma_cutover_health_timeout_s": 10,
                                                     "chroma_notify_webhooks": [receiver.hook()]})
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert "down_at" in seen, "the cutover never edited app_chatbot's config"
    assert run.status == "failed", run.explain()
    # the proxy and the apps were reached over SSH, each by its own sshd, from the controller's veth
    gateway = lab.map["network"]["gateway"]
    for host in ("lab_proxy", "app_openwebui", "app_chatbot"):
        logins = _ssh_logins(lab, host)
        assert logins and all(f"from {gateway} " in line for line in logins), (host, logins[:3])
        assert lab.map["hosts"][host]["address"].startswith("10.231.")
    # each config came back to the controller before the cutover edited it; the header value is never shown
    for name in lab.apps:
        backup = lab.latest_run() / "backups" / name / "app.env"
        assert backup.read_text() == originals[name], f"the backup of {name} was not fetched to the controller"
    edit = run.openwebui_config_edits()
    assert edit and edit[0]["file_changed"] and edit[0]["secret_keys"] == ["CHROMA_HTTP_HEADERS"], edit
    assert "lab-token-7f3c9a" not in run.stdout
    stop_msg = dict(run.failed_tasks).get("Stop - the migration did not complete", "")
    assert "app_chatbot" in stop_msg and "unreachable" in stop_msg and "FROZEN" in stop_msg, run.failed_tasks
    # the reachable app is back on the source, the lost one is named, the freeze holds
    assert lab.app_health("app_openwebui")["chroma_url"] == lab.front_door
    report = json.loads((lab.latest_run() / "reports" / "rollback_report.json").read_text())
    assert report["apps"] == ["app_openwebui"] and report["apps_unreachable"] == ["app_chatbot"], report
    assert report["freeze"]["released_at"] is None and "app_chatbot" in report["freeze"]["kept_because"]
    assert "app_chatbot" in (lab.latest_run() / "reports" / "rollback_report.md").read_text()
    assert lab.latest_state()["status"] == "rollback_failed"
    status, refused = http(f"{lab.front_door}{DB_API}/collections", body={"name": "x"}, method="POST")
    assert status == 503 and refused["error"] == "WritesFrozen", refused
    texts = receiver.texts()
    assert milestones(texts)[-3:] == ["FAILED", "ROLLBACK STARTED", "ROLLBACK FINISHED"], texts
    assert "unreachable: app_chatbot" in texts[-1], texts[-1]

    # the host comes back: a later rollback.yml restores it and opens writes
    netns.set_link(netns.topology(lab.root), "app_chatbot", "up")
    back = lab.playbook("rollback.yml", tmp_path / "again", {"drop_target": True})
    assert back.status == "successful", back.explain()
    for name in lab.apps:
        assert lab.app_health(name)["chroma_url"] == lab.front_door
    report = json.loads((lab.latest_run() / "reports" / "rollback_report.json").read_text())
    assert "app_chatbot" in report["apps"] and report["apps_unreachable"] == [], report
    assert lab.latest_state()["status"] == "rolled_back"
    status, body = http(f"{lab.front_door}{DB_API}/collections", body={"name": "mh_open2", "get_or_create": True},
                        method="POST")
    assert status == 200, body
    http(f"{lab.source}{DB_API}/collections/mh_open2", method="DELETE")
    assert lab.counts(lab.target) == {}
