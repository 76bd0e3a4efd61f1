"""A config file's backup in the run directory (chroma_run keep_backup's engine)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chroma_runbook.run.backups import keep_backup, meta_path

META = {"path": "/etc/app/.env", "mode": "0640", "owner": "app", "group": "app"}


def fetched(tmp_path: Path) -> Path:
    """What fetch leaves under umask 0: a world-readable directory and file."""
    folder = tmp_path / "backups" / "app1"
    folder.mkdir(parents=True)
    backup = folder / ".env"
    backup.write_text("CHROMA_URL=http://source:8000\n")
    os.chmod(folder, 0o777)
    os.chmod(backup, 0o666)
    return backup


def test_the_backup_becomes_private_with_its_record_beside_it_once(tmp_path: Path) -> None:
    backup = fetched(tmp_path)
    assert keep_backup(backup, META, write=True)
    assert backup.stat().st_mode & 0o777 == 0o600 and backup.parent.stat().st_mode & 0o777 == 0o700
    record = meta_path(backup)
    assert record.name == ".env.meta.json" and json.loads(record.read_text()) == META
    assert record.stat().st_mode & 0o777 == 0o600
    assert not keep_backup(backup, META, write=True)          # a second run changes nothing


def test_check_mode_says_it_would_and_writes_nothing(tmp_path: Path) -> None:
    backup = fetched(tmp_path)
    assert keep_backup(backup, META, write=False)
    assert backup.stat().st_mode & 0o777 == 0o666 and not meta_path(backup).exists()
    assert keep_backup(tmp_path / "never-fetched", META, write=False)   # a dry run fetched nothing


def test_a_missing_backup_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never-fetched"):
        keep_backup(tmp_path / "never-fetched", META, write=True)
