"""Helpers of the runbook tests: a real lab per test module, real ansible-playbook runs.

A lab is brought up with the real CLI (`python -m lab.labctl up`) in a tmp dir on a
free port base and taken down by the same CLI. Playbooks run through
ansible-runner's Python API against the repo's inventory, pointed at that lab with
`chroma_lab_dir` / `chroma_lab_port_base`; tests assert on runner events and stats.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import ansible_runner

from lab.chroma_server import free_port_base as shared_free_port_base
from lab.layout import PORT_SPAN

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DB_API = "/api/v2/tenants/default_tenant/databases/default_database"
PHASES = ["(1/7) PREFLIGHT", "(2/7) FREEZE", "(3/7) SNAPSHOT", "(4/7) MIGRATE",
          "(5/7) VALIDATE", "(6/7) GO/NO-GO", "(7/7) CUTOVER"]


def free_port_base() -> int:
    """A base in 25000-32700 whose 12 ports are all free: clear of 8000/8200/8300, of test_lab's range,
    and below Linux's ephemeral ports (32768-60999), which any client connection may take between
    the pick and the servers' bind (a CI run lost a lab to "Address 127.0.0.1:44346 is not available")."""
    return shared_free_port_base(25000, 32700, PORT_SPAN)


def http(url: str, body: Any = None, method: Optional[str] = None, timeout: float = 30) -> tuple[int, Any]:
    """(status, decoded JSON or text); HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode("utf-8", "replace")


@dataclass
class Lab:
    """One lab (labctl) on loopback."""

    root: Path
    port_base: int
    variant: str = "legacy"
    scale: float = 1.0

    def url(self, offset: int) -> str:
        return f"http://127.0.0.1:{self.port_base + offset}"

    @property
    def front_door(self) -> str:
        return self.url(0)

    @property
    def source(self) -> str:
        return self.url(1)

    @property
    def target(self) -> str:
        return self.url(2)

    @property
    def apps(self) -> dict[str, str]:
        return {"app_openwebui": self.url(10), "app_chatbot": self.url(11)}

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def labctl(self, action: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-m", "lab.labctl", action, "--dir", str(self.root), "--port-base", str(self.port_base)]
        if action == "up":
            args += ["--variant", self.variant, "--scale", str(self.scale)]
        return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)

    def up(self) -> "Lab":
        done = self.labctl("up")
        if done.returncode != 0:
            self.labctl("down")
            raise RuntimeError(f"labctl up failed in {self.root}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return self

    def down(self) -> None:
        self.labctl("down")

    def reload_nginx(self) -> None:
        """Reload the lab's nginx after a test changed its snippets (the reload is graceful)."""
        prefix = self.root / "nginx"
        subprocess.run(["nginx", "-s", "reload", "-c", str(prefix / "nginx.conf"), "-p", f"{prefix}/"],
                       check=True, capture_output=True, timeout=30)

    # -- what the lab looks like -------------------------------------------------
    def collections(self, base: str) -> dict[str, dict[str, Any]]:
        status, listed = http(f"{base}{DB_API}/collections?limit=1000")
        assert status == 200, listed
        return {c["name"]: c for c in listed}

    def counts(self, base: str) -> dict[str, int]:
        return {name: http(f"{base}{DB_API}/collections/{c['id']}/count")[1] for name, c in self.collections(base).items()}

    def app_health(self, name: str) -> dict[str, Any]:
        status, body = http(f"{self.apps[name]}/health")
        assert status == 200, body
        return body

    def app_config(self, name: str) -> str:
        return (self.root / "apps" / name / "app.env").read_text()

    def front_door_add(self, collection: str, record_id: str, dimension: int = 768) -> tuple[int, Any]:
        """A real write through the front door (an `add` to an existing collection)."""
        coll = self.collections(self.front_door)[collection]
        return http(f"{self.front_door}{DB_API}/collections/{coll['id']}/add", method="POST",
                    body={"ids": [record_id], "embeddings": [[0.01] * dimension], "documents": ["runbook test write"]})

    def source_delete(self, collection: str, record_id: str) -> None:
        coll = self.collections(self.source)[collection]
        status, body = http(f"{self.source}{DB_API}/collections/{coll['id']}/delete", method="POST", body={"ids": [record_id]})
        assert status == 200, body

    def latest_run(self) -> Path:
        return (self.runs_dir / "latest").resolve()

    def latest_state(self) -> dict[str, Any]:
        return json.loads((self.latest_run() / "state.json").read_text())


# The cutover's config edit of an app with Open WebUI's keys (the lab's app_openwebui).
OPENWEBUI_EDIT_TASK = ("Back up the config file (once per run) and point the app's Chroma settings at the target - "
                       "CHROMA_HTTP_HOST, CHROMA_HTTP_PORT, CHROMA_HTTP_SSL, CHROMA_HTTP_HEADERS, CHROMA_TENANT, "
                       "CHROMA_DATABASE")


@dataclass
class PlaybookRun:
    """What ansible-runner saw: status, stats and the events that matter."""

    status: str
    rc: int
    stats: dict[str, dict[str, int]]
    events: list[dict[str, Any]] = field(repr=False)
    stdout: str = field(repr=False, default="")

    def total(self, stat: str) -> int:
        return sum((self.stats.get(stat) or {}).values())

    @property
    def plays(self) -> list[str]:
        return [e["event_data"].get("play", "") for e in self.events if e.get("event") == "playbook_on_play_start"]

    @property
    def failed_tasks(self) -> list[tuple[str, str]]:
        return [(e["event_data"].get("task", ""), str(e["event_data"].get("res", {}).get("msg", "")))
                for e in self.events if e.get("event") == "runner_on_failed" and not e["event_data"].get("ignore_errors")]

    @property
    def changed_tasks(self) -> list[str]:
        return [e["event_data"].get("task", "") for e in self.events
                if e.get("event") == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")]

    def task_results(self, task: str) -> list[dict[str, Any]]:
        return [e["event_data"].get("res", {}) for e in self.events
                if e.get("event") in ("runner_on_ok", "runner_on_failed") and e["event_data"].get("task") == task]

    def openwebui_config_edits(self) -> list[dict[str, Any]]:
        """The results of the config edit of the apps with Open WebUI's keys (header values are secrets there)."""
        return [r for r in self.task_results(OPENWEBUI_EDIT_TASK) if "CHROMA_HTTP_HEADERS" in r.get("keys", [])]

    def explain(self) -> str:
        return f"status={self.status} rc={self.rc} stats={self.stats} failed={self.failed_tasks}\n{self.stdout[-4000:]}"


def run_playbook(lab: Lab, playbook: str, private_dir: Path, extravars: Optional[dict[str, Any]] = None,
                 cmdline: str = "", timeout: int = 900, inventory: str | Path = "lab.yml",
                 answers: Optional[dict[str, str]] = None) -> PlaybookRun:
    """ansible-playbook <playbook> (relative to the repo, or absolute) on this lab, through ansible-runner's Python API.

    ``inventory`` names a file of the repo's inventory/ or is a path anywhere (an operator's own
    inventory); ``answers`` maps a prompt's regex to the line typed at it (ansible-runner runs
    the playbook on a pty and answers like expect).
    """
    private_dir.mkdir(parents=True, exist_ok=True)
    envvars = {
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_NOCOLOR": "1",
    }
    runner = ansible_runner.run(
        private_data_dir=str(private_dir),
        project_dir=str(REPO),
        playbook=str(REPO / playbook),
        inventory=str(REPO / "inventory" / inventory),
        extravars={"chroma_lab_dir": str(lab.root), "chroma_lab_port_base": lab.port_base, **(extravars or {})},
        cmdline=cmdline or None,
        envvars=envvars,
        quiet=True,
        timeout=timeout,
        passwords=answers or {},
    )
    stdout_file = Path(runner.config.artifact_dir) / "stdout"
    return PlaybookRun(
        status=runner.status,
        rc=runner.rc,
        stats=runner.stats or {},
        events=list(runner.events),
        stdout=stdout_file.read_text(errors="replace") if stdout_file.is_file() else "",
    )


class WebhookReceiver:
    """`python -m lab.webhook_receiver` on a free 127.0.0.1 port, stopped by its PID."""

    def __init__(self, workdir: Path) -> None:
        from lab.chroma_server import free_port

        self.port, self.log = free_port(), workdir / "webhooks.jsonl"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> "WebhookReceiver":
        out = open(self.log.with_suffix(".out"), "ab")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen([sys.executable, "-m", "lab.webhook_receiver", "--port", str(self.port),
                                      "--log", str(self.log)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        import time

        for _ in range(100):
            try:
                if http(f"{self.url}/messages", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"webhook receiver on {self.url} did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def hook(self, name: str = "ops") -> str:
        return f"{self.url}/hook/{name}"

    def texts(self, name: str = "ops") -> list[str]:
        from lab.webhook_receiver import read_messages

        return [m["body"]["text"] for m in read_messages(self.log) if m["path"] == f"/hook/{name}"]

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)


MILESTONES = ("WINDOW OPENED", "FROZEN", "GO/NO-GO", "CUTOVER DONE", "ROLLBACK STARTED", "ROLLBACK FINISHED", "FAILED")


def milestones(texts: list[str]) -> list[str]:
    """The milestone of each message ('[chroma-runbook] run X: FROZEN - ...' -> 'FROZEN'); '?' if none."""
    found = []
    for text in texts:
        body = text.split(": ", 1)[1] if text.startswith("[chroma-runbook] run ") and ": " in text else text
        found.append(next((m for m in MILESTONES if body.startswith(m)), "?"))
    return found
