"""The run's checkpoint: a JSON file replaced atomically (tmp + fsync + rename + dir fsync).

Readers (the runbook role shows progress from it) always see a whole file.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from ..io.clock import utc_stamp
from ..io.fsutil import write_json_atomic
from ..run.names import checkpoint_file

CHECKPOINT_VERSION = 1


def checkpoint_path(checkpoint_dir: str, run_id: str) -> str:
    return checkpoint_file(checkpoint_dir, run_id)


def write_atomic(path: str, data: dict[str, Any]) -> None:
    """Replace the checkpoint (or spool manifest) at ``path`` atomically (fsutil.write_json_atomic)."""
    write_json_atomic(path, data, indent=1, newline=False)


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
    return utc_stamp()
