"""The run's checkpoint: a JSON file replaced atomically (tmp + fsync + rename + dir fsync).

Readers (the runbook role shows progress from it) always see a whole file.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Optional

CHECKPOINT_VERSION = 1


def checkpoint_path(checkpoint_dir: str, run_id: str) -> str:
    return os.path.join(checkpoint_dir, f"{run_id}.checkpoint.json")


def write_atomic(path: str, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, never a mix."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = f"{path}.tmp.{os.getpid()}"
    payload = json.dumps(data, indent=1, sort_keys=True, default=str).encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: str) -> Optional[dict[str, Any]]:
    """The checkpoint at ``path`` or None; a corrupt file is an error naming it."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"checkpoint {path} cannot be read ({exc}); move it away or use resume=false") from exc
    if not isinstance(data, dict) or data.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} is not a chroma_migrate checkpoint (version {CHECKPOINT_VERSION})")
    return data


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
