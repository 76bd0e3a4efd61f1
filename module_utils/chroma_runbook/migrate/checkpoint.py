"""The run's checkpoint: a JSON file replaced atomically (tmp + fsync + rename + dir fsync).

Readers (the runbook role shows progress from it) always see a whole file.
``CheckpointState`` is the document of one run in memory and its persistence; the
states it records are the constants of ``run.states`` (plain strings on disk).
"""
from __future__ import annotations

import json
import os
import socket
import threading
from typing import TYPE_CHECKING, Any, Optional

from ..io.clock import utc_stamp
from ..io.fsutil import write_json_atomic
from ..run.names import checkpoint_file
from ..run.states import Phase

if TYPE_CHECKING:  # the options import the importer, which imports the spool, which imports this module
    from .migration_options import MigrationOptions

CHECKPOINT_VERSION = 1
MAX_ERRORS_KEPT = 50
# the lists of target collections the checkpoint keeps, by what the run did to them
COLLECTION_LISTS = ("created_collections", "replaced_collections", "merged_collections", "adopted_collections")


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


class CheckpointState:
    """The checkpoint document of one run and its atomic persistence (``persist=False``: the dry run)."""

    def __init__(self, path: str, data: dict[str, Any], persist: bool) -> None:
        self.path, self.data, self.persist = path, data, persist
        self.lock = threading.RLock()  # the scan and the import's writers both update it

    @classmethod
    def fresh(cls, opts: "MigrationOptions", path: str, persist: bool) -> "CheckpointState":
        data = {
            "checkpoint_version": CHECKPOINT_VERSION,
            "run_id": opts.run_id,
            "fingerprint": opts.fingerprint,
            "fingerprint_parts": opts.fingerprint_parts(),
            "started_at": now_iso(),
            "phase": Phase.EXPORT,
            "import_mode": opts.import_mode,
            "total_chunks": 0,
            "processed_chunks": 0,
            "successful_chunks": 0,
            "failed_chunks": 0,
            "valid_chunks": 0,
            "last_batch_index": -1,
            "acked_beyond": [],
            "total_batches": 0,
            "errors": [],
            "source_counts": {},
            "spool_complete": False,
            "targets": {},
            **{key: [] for key in COLLECTION_LISTS},
            "attempts": 0,
            "paths": {"rejects": opts.rejects_path, "log": opts.log_path, "spool": opts.spool_dir},
        }
        return cls(path, data, persist)

    @property
    def phase(self) -> Optional[str]:
        return self.data.get("phase")

    def save(self, **updates: Any) -> None:
        with self.lock:
            self.data.update(updates)
            self.data["updated_at"] = now_iso()
            self.data["pid"] = os.getpid()
            self.data["host"] = socket.gethostname()
            if self.persist:
                write_atomic(self.path, self.data)

    def error(self, phase: str, message: str, **where: Any) -> None:
        with self.lock:
            self.data["errors"] = (self.data["errors"] + [{"ts": now_iso(), "phase": phase, "message": message,
                                                           **where}])[-MAX_ERRORS_KEPT:]
            self.save()

    def target(self, name: str) -> dict[str, Any]:
        return self.data["targets"].setdefault(name, {})

    def list_collection(self, name: str, *lists: str) -> None:
        """Add ``name`` (once) to each of the checkpoint's collection ``lists`` (created, replaced...)."""
        with self.lock:
            for key in lists:
                assert key in COLLECTION_LISTS, key
                if name not in self.data[key]:
                    self.data[key] = self.data[key] + [name]
