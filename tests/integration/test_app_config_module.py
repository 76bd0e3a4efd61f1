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


def test_backup_to_copies_the_file_durably_before_the_edit_and_only_once_per_run(tmp_path: Path) -> None:
    """One task backs the config file up on the controller (0600, its mode and owner recorded) and edits it;
    check mode writes neither; a second run keeps the backup of the original, not the edited file."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    compose.chmod(0o640)
    backup = tmp_path / "run" / "backups" / "app" / "docker-compose.yml"
    args = {"path": str(compose), "format": "compose", "service": "open-webui", "settings": SETTINGS,
            "connection": CONNECTION, "backup_to": str(backup)}
    rc, dry, out = run_module(tmp_path, "chroma_app_config", args, check=True, name="dry")
    assert rc == 0 and dry["changed"] is True and dry["backup"]["taken"] is True and dry["file_changed"], out
    assert not backup.exists() and compose.read_text() == COMPOSE, "check mode wrote something"

    rc, done, out = run_module(tmp_path, "chroma_app_config", args, name="real")
    assert rc == 0 and done["file_changed"] and done["backup"]["taken"] is True, out
    assert backup.read_text() == COMPOSE and compose.read_text() != COMPOSE
    assert backup.stat().st_mode & 0o777 == 0o600 and backup.parent.stat().st_mode & 0o777 == 0o700
    meta = json.loads(Path(f"{backup}.meta.json").read_text())
    assert meta["path"] == str(compose) and meta["mode"] == "0640" and meta["owner"] and meta["group"]
    assert "t0psecret" not in out and "content_b64" not in done

    rc, again, out = run_module(tmp_path, "chroma_app_config", args, name="again")
    assert rc == 0 and again["changed"] is False and again["backup"]["taken"] is False, out
    assert backup.read_text() == COMPOSE, "the second run backed up the edited file"


def test_a_backup_cut_short_is_taken_again_and_a_file_changed_since_is_not_edited(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("CHROMA_URL=http://old:8000\n")
    backup = tmp_path / "run" / "backups" / "app" / "app.env"
    backup.parent.mkdir(parents=True)
    backup.write_text("half a copy")           # killed after the copy, before its record: not a backup yet
    args = {"path": str(env_file), "settings": {"CHROMA_URL": "url"}, "connection": {"url": "http://new:8000"},
            "backup_to": str(backup)}
    rc, done, out = run_module(tmp_path, "chroma_app_config", args, name="retake")
    assert rc == 0 and done["backup"]["taken"] is True, out
    assert backup.read_text() == "CHROMA_URL=http://old:8000\n" and env_file.read_text() == "CHROMA_URL=http://new:8000\n"

    # the module refuses to edit a file that is not what was backed up (it changed in between)
    plain = {k: v for k, v in args.items() if k != "backup_to"}
    rc, refused, out = run_module(tmp_path, "chroma_app_config", dict(plain, expect_checksum="0" * 40), name="moved")
    assert rc != 0 and "changed since its backup was taken" in refused["msg"], out
    assert env_file.read_text() == "CHROMA_URL=http://new:8000\n"


def test_a_backup_that_cannot_be_written_stops_before_the_edit(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("CHROMA_URL=http://old:8000\n")
    (tmp_path / "not-a-dir").write_text("a file where the backup directory should be")
    args = {"path": str(env_file), "settings": {"CHROMA_URL": "url"}, "connection": {"url": "http://new:8000"},
            "backup_to": str(tmp_path / "not-a-dir" / "app.env")}
    rc, failed, out = run_module(tmp_path, "chroma_app_config", args, name="unwritable")
    assert rc != 0 and "cannot back" in failed["msg"] and "the file was not edited" in failed["msg"], out
    assert env_file.read_text() == "CHROMA_URL=http://old:8000\n"


def test_backup_to_without_the_action_plugin_edits_nothing(tmp_path: Path) -> None:
    """An ansible.cfg without the project's action plugins runs the module alone: it must refuse, not edit unbacked."""
    env_file = tmp_path / "app.env"
    env_file.write_text("CHROMA_URL=http://old:8000\n")
    play = tmp_path / "bare.yml"
    play.write_text(f"""\
- hosts: localhost
  gather_facts: false
  tasks:
    - chroma_app_config:
        path: {env_file}
        settings: {{CHROMA_URL: url}}
        connection: {{url: "http://new:8000"}}
        backup_to: {tmp_path / "backup" / "app.env"}
""")
    env = dict(os.environ, ANSIBLE_LIBRARY=str(REPO / "library"), ANSIBLE_MODULE_UTILS=str(REPO / "module_utils"),
               ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode != 0 and "handled on the controller by the chroma_app_config action plugin" in proc.stdout
    assert env_file.read_text() == "CHROMA_URL=http://old:8000\n" and not (tmp_path / "backup").exists()
