"""The names the engine gives things, written once. Roles ask ``chroma_run action=paths``
for them instead of rebuilding the rules in Jinja.

- staging collections: ``staging-<10 hex of sha1(run_id)>-<target>`` (cut and hashed
  when longer than Chroma allows);
- the checkpoint: ``<checkpoint_dir>/<run_id>.checkpoint.json``;
- the freeze files the proxy method writes into nginx's snippet directories.
"""
from __future__ import annotations

import hashlib
import os

STAGING_PREFIX = "staging-"
MAX_NAME = 512
CHECKPOINT_SUFFIX = ".checkpoint.json"
# proxy freeze: the write-route map (nginx http level) and the gate (front-door server)
FREEZE_FILES = {"map": "chroma_runbook_freeze_map.conf", "gate": "chroma_runbook_freeze_gate.conf"}


def staging_prefix(run_id: str) -> str:
    """``staging-<10 hex of sha1(run_id)>-``: what rollback looks for to drop a run's leftovers."""
    return f"{STAGING_PREFIX}{hashlib.sha1(run_id.encode('utf-8')).hexdigest()[:10]}-"


def staging_name(run_id: str, target: str) -> str:
    """The staging collection of ``target`` in run ``run_id`` (a valid Chroma collection name)."""
    prefix = staging_prefix(run_id)
    if len(prefix) + len(target) <= MAX_NAME:
        return prefix + target
    digest = hashlib.sha1(target.encode("utf-8")).hexdigest()[:10]  # keeps a cut name unique
    return prefix + target[: MAX_NAME - len(prefix) - len(digest) - 1] + "-" + digest


def checkpoint_file(checkpoint_dir: str, run_id: str) -> str:
    return os.path.join(checkpoint_dir, f"{run_id}{CHECKPOINT_SUFFIX}")
