"""chroma_app_config and chroma_notify through a real ansible-playbook: documented, honest check mode,
secrets never in the output; a webhook that fails only warns."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from module_play import run_module

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = """\
services:
  open-webui:
    image: ghcr.io/open-webui/open-webui:main
    environment:
      - WEBUI_NAME=Docs
      - CHROMA_HTTP_HOST=chroma-old
      - CHROMA_HTTP_PORT=8000
"""
SETTINGS = {"CHROMA_HTTP_HOST": "host", "CHROMA_HTTP_PORT": "port", "CHROMA_HTTP_SSL": "ssl",
            "CHROMA_HTTP_HEADERS": "headers", "CHROMA_TENANT": "tenant", "CHROMA_DATABASE": "database"}
CONNECTION = {"url": "https://chroma-new.example:8443", "headers": {"Authorization": "Bearer t0psecret"}}


def test_both_modules_are_documented() -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "ansible-doc"), "-M", "library", "--json", "chroma_app_config", "chroma_notify"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True)
    docs = json.loads(proc.stdout)
    assert set(docs) == {"chroma_app_config", "chroma_notify"}
    assert docs["chroma_app_config"]["doc"]["options"]["connection"]["suboptions"]["headers"]["type"] == "dict"


def test_compose_edit_check_mode_then_real_never_shows_the_header(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    args = {"path": str(compose), "format": "compose", "service": "open-webui", "settings": SETTINGS,
            "connection": CONNECTION}
    rc, dry, out = run_module(tmp_path, "chroma_app_config", args, check=True, name="dry")
    assert rc == 0 and dry["changed"] is True, out
    assert compose.read_text() == COMPOSE, "check mode wrote the file"
    rc, done, out = run_module(tmp_path, "chroma_app_config", args, name="real")
    assert rc == 0 and done["changed"] is True, out
    env = yaml.safe_load(compose.read_text())["services"]["open-webui"]["environment"]
    assert "CHROMA_HTTP_HEADERS=Authorization=Bearer t0psecret" in env and "CHROMA_HTTP_SSL=true" in env
    assert done["values"]["CHROMA_HTTP_HEADERS"] == "********" and done["secret_keys"] == ["CHROMA_HTTP_HEADERS"]
    assert "t0psecret" not in out and "t0psecret" not in json.dumps(done)
    rc, again, out = run_module(tmp_path, "chroma_app_config", args, name="again")
    assert rc == 0 and again["changed"] is False and again["changed_keys"] == [], out


def test_a_failing_webhook_warns_and_the_task_succeeds(tmp_path: Path) -> None:
    rc, result, out = run_module(tmp_path, "chroma_notify", {"webhooks": ["http://127.0.0.1:9/secret-path"],
                                                             "text": "hello"})
    assert rc == 0 and result["undelivered"] == 1 and result["sent"] == 0, out
    assert "notification not delivered to http://127.0.0.1:9/..." in out and "secret-path" not in out
