"""Options of a migration run, validated before anything is touched (errors name the option)."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..io.connection import ConnectionSpec
from ..run.run_lock import LOCK_NAME, target_lock_path
from ..run.run_state import run_id_problem
from ..run.states import Existing, ImportMode
from .importer import EXISTING_MODES
from .transform import Transformer

MAX_BATCH_SIZE = 5461
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024  # Chroma's default HTTP body limit is 40 MiB
# What a dry run (check mode) covers: phases 1-3 for real, or only what is known before reading (options).
CHECK_SCOPES = ("full", "options")


class OptionError(ValueError):
    """A bad option; the message starts with its name."""


@dataclass
class MigrationOptions:
    source: dict[str, Any]
    target: dict[str, Any]
    checkpoint_dir: str
    collections: Optional[list[str]] = None
    routing: Any = None
    schema: Any = None
    batch_size: int = 1000
    run_id: Optional[str] = None
    resume: bool = True
    min_valid_ratio: float = 0.95
    rejects_path: Optional[str] = None
    max_retries: int = 5
    retry_delay: float = 1.0
    existing: str = "fail"
    log_path: Optional[str] = None
    verify_sample: int = 100
    writers: int = 1
    page_size: int = 500  # a 768-dim page of 500 is ~20 MB of Python objects while it is parsed
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    keep_spool: bool = False
    staging: bool = True
    precopy: bool = False  # this invocation copies the live source into staging and stops (no gate, no promotion)
    lock_dir: Optional[str] = None
    check_scope: str = "full"
    # Under the freeze: opens the frozen source's records from elsewhere than its server (the run's
    # snapshot, given by the caller); the live pre-copy always reads the server. Not in the fingerprint:
    # where the same records are read from does not change what the target gets.
    source_reader: Optional[Callable[[], Any]] = field(default=None, repr=False)
    # filled by validate()
    source_spec: Optional[ConnectionSpec] = field(default=None, repr=False)
    target_spec: Optional[ConnectionSpec] = field(default=None, repr=False)
    transformer: Optional[Transformer] = field(default=None, repr=False)
    fingerprint: str = ""

    def validate(self) -> "MigrationOptions":
        """Check every option; fill run_id and default paths; raise OptionError/ProfileError."""
        self.source_spec = ConnectionSpec.from_dict(self.source, "source")
        self.target_spec = ConnectionSpec.from_dict(self.target, "target")
        if self.source_spec == self.target_spec:
            raise OptionError("target: is the same Chroma as source; a migration needs another server or database")
        _int_range("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        _int_range("max_retries", self.max_retries, 0, 100)
        _int_range("verify_sample", self.verify_sample, 0, 100000)
        _int_range("writers", self.writers, 1, 8)
        _int_range("page_size", self.page_size, 1, MAX_BATCH_SIZE)
        _int_range("max_body_bytes", self.max_body_bytes, 64 * 1024, 1 << 31)
        if not 0.0 <= float(self.min_valid_ratio) <= 1.0:
            raise OptionError(f"min_valid_ratio must be between 0 and 1, got {self.min_valid_ratio}")
        if float(self.retry_delay) < 0:
            raise OptionError(f"retry_delay must be >= 0 seconds, got {self.retry_delay}")
        if self.check_scope not in CHECK_SCOPES:
            raise OptionError(f"check_scope must be one of {CHECK_SCOPES}, got {self.check_scope!r}")
        if self.existing not in EXISTING_MODES:
            raise OptionError(f"existing must be one of {EXISTING_MODES}, got {self.existing!r}")
        if self.precopy and self.import_mode != ImportMode.STAGED:
            raise OptionError(f"precopy needs the staged import (staging=true and existing fail or replace); "
                              f"got staging={self.staging}, existing={self.existing}")
        if self.collections is not None:
            if not isinstance(self.collections, list) or not all(isinstance(c, str) and c for c in self.collections):
                raise OptionError("collections must be a list of source collection names")
        if not self.checkpoint_dir:
            raise OptionError("checkpoint_dir is required (a local directory for checkpoint, lock and spool)")
        self.checkpoint_dir = os.path.abspath(os.path.expanduser(self.checkpoint_dir))
        self.transformer = Transformer.from_options(self.routing, self.schema)
        self.fingerprint = self._fingerprint()
        if self.run_id is None:
            self.run_id = f"migrate-{self.fingerprint[:12]}"
        problem = run_id_problem(self.run_id)
        if problem:
            raise OptionError(problem)
        self.rejects_path = self.rejects_path or os.path.join(self.checkpoint_dir, f"{self.run_id}.rejects.jsonl")
        self.log_path = self.log_path or os.path.join(self.checkpoint_dir, f"{self.run_id}.log.jsonl")
        return self

    def _fingerprint(self) -> str:
        """What decides the target's content and the batch cut: resuming needs all of it unchanged."""
        assert self.source_spec is not None and self.target_spec is not None
        basis = {
            "source": [self.source_spec.url, self.source_spec.path, self.source_spec.tenant, self.source_spec.database],
            "target": [self.target_spec.url, self.target_spec.path, self.target_spec.tenant, self.target_spec.database],
            "collections": self.collections,
            "routing": self.routing,
            "schema": self.schema,
            "batch_size": self.batch_size,
            "max_body_bytes": self.max_body_bytes,
        }
        return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()

    def fingerprint_parts(self) -> dict[str, str]:
        """Per-option digests, so a refused resume can say which option changed."""
        parts = {"collections": self.collections, "routing": self.routing, "schema": self.schema,
                 "batch_size": self.batch_size, "max_body_bytes": self.max_body_bytes,
                 "source": self.source_spec.describe() if self.source_spec else None,
                 "target": self.target_spec.describe() if self.target_spec else None}
        return {k: hashlib.sha256(json.dumps(v, sort_keys=True, default=str).encode()).hexdigest()[:16]
                for k, v in parts.items()}

    @property
    def import_mode(self) -> str:
        """``staged``: batches go to staging collections while validation runs, renamed after the gate;
        ``direct``: validate everything, then write into the target's collections (existing=merge,
        or staging=false)."""
        return ImportMode.STAGED if self.staging and self.existing != Existing.MERGE else ImportMode.DIRECT

    @property
    def lock_path(self) -> str:
        """One lock per target under ``lock_dir`` (two runs never write one target at once), else
        ``<checkpoint_dir>/migrate.lock``."""
        if not self.lock_dir:
            return os.path.join(self.checkpoint_dir, LOCK_NAME)
        assert self.target_spec is not None
        return target_lock_path(os.path.abspath(os.path.expanduser(self.lock_dir)), self.target_spec)

    @property
    def spool_dir(self) -> str:
        return os.path.join(self.checkpoint_dir, f"{self.run_id}.spool")


def _int_range(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(f"{name} must be an integer from {low} to {high}, got {value!r}")
