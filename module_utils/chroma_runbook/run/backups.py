"""A config file's backup in the run directory: private, with the mode and owner to restore.

The cutover fetches an app's config file into ``<run>/backups/<host>/<file>`` before it edits it;
``keep_backup`` then makes the copy private (file 0600, its directory 0700: it may hold secrets)
and writes ``<file>.meta.json`` next to it (the original path, mode, owner and group, which the
rollback puts back). One call instead of a task per step inside the write freeze.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..io.fsutil import DIR_MODE, FILE_MODE
from .run_state import write_json_if_changed

META_SUFFIX = ".meta.json"


def meta_path(backup: Path) -> Path:
    return backup.with_name(backup.name + META_SUFFIX)


def backup_complete(backup: Path) -> bool:
    """The run's backup and its record exist (a copy without its record was cut short before the edit)."""
    return backup.is_file() and meta_path(backup).is_file()


def write_backup(backup: Path, content: bytes, meta: Mapping[str, Any]) -> None:
    """The copy (0600, in a 0700 directory), written and synced, then its record beside it: durable before
    the caller edits the original."""
    backup.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tmp = backup.with_name(f".{backup.name}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, backup)
    keep_backup(backup, meta, write=True)
    dir_fd = os.open(backup.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _mode_differs(path: Path, mode: int) -> bool:
    return (path.stat().st_mode & 0o777) != mode


def keep_backup(backup: Path, meta: Mapping[str, Any], write: bool) -> bool:
    """Make ``backup`` private and record ``meta`` beside it; True when anything changed (or would)."""
    if not backup.is_file():
        if write:
            raise FileNotFoundError(f"backup {backup} does not exist: the config file was not fetched")
        return True  # a dry run fetched nothing: it would keep one
    changes = [(backup.parent, DIR_MODE)] if _mode_differs(backup.parent, DIR_MODE) else []
    changes += [(backup, FILE_MODE)] if _mode_differs(backup, FILE_MODE) else []
    if write:
        for path, mode in changes:
            os.chmod(path, mode)
    # the run's own rule for its JSON files: written atomically, 0600, only when it differs
    meta_changed = write_json_if_changed(meta_path(backup), meta, write)
    return bool(changes) or meta_changed
