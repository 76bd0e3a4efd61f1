"""Retention of snapshots: prune the old ones, never the newest, never a protected one."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from ..io.fsutil import remove_tree
from .manifest import MANIFEST_NAME, SnapshotError, load_manifest

DEFAULT_RETENTION_DAYS = 7
INCOMPLETE_MARK = ".tmp-"


@dataclass
class SnapshotInfo:
    """One snapshot found under the retention root."""

    path: Path
    snapshot_id: str
    created_unix: float
    complete: bool

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "snapshot_id": self.snapshot_id,
                "created_unix": self.created_unix, "complete": self.complete}


def _candidates(root: Path) -> Iterable[Path]:
    """Directories that hold a manifest (depth 1 or 2: ``root/<id>`` or ``root/<run>/snapshot``),
    and incomplete temp directories left by an interrupted snapshot."""
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.is_symlink():
            continue
        if (child / MANIFEST_NAME).exists() or INCOMPLETE_MARK in child.name:
            yield child
            continue
        for grandchild in sorted(child.iterdir()):
            if grandchild.is_dir() and not grandchild.is_symlink() and (
                    (grandchild / MANIFEST_NAME).exists() or INCOMPLETE_MARK in grandchild.name):
                yield grandchild


def find_snapshots(root: Path) -> list[SnapshotInfo]:
    """Snapshots under ``root``, oldest first (incomplete ones use their mtime)."""
    found = []
    for path in _candidates(Path(root)):
        try:
            manifest = load_manifest(path)
            found.append(SnapshotInfo(path, str(manifest.get("snapshot_id", path.name)),
                                      float(manifest.get("created_unix") or path.stat().st_mtime), True))
        except SnapshotError:
            found.append(SnapshotInfo(path, path.name, path.stat().st_mtime, False))
    return sorted(found, key=lambda s: s.created_unix)


def _is_protected(info: SnapshotInfo, protect: Iterable[str]) -> bool:
    resolved = info.path.resolve()
    for item in protect:
        item = str(item)
        if item in (info.snapshot_id, info.path.name) or Path(item).resolve() in (resolved, resolved.parent):
            return True
    return False


def plan_prune(snapshots: list[SnapshotInfo], retention_days: float, protect: Iterable[str] = (),
               now: Optional[float] = None) -> tuple[list[SnapshotInfo], dict[str, str]]:
    """(snapshots to delete, kept path -> why)."""
    if retention_days < 0:
        raise ValueError(f"retention_days must be >= 0, got {retention_days}")
    now = time.time() if now is None else now
    cutoff = now - retention_days * 86400
    protect = list(protect)
    complete = [s for s in snapshots if s.complete]
    newest = max(complete, key=lambda s: s.created_unix) if complete else None
    delete, kept = [], {}
    for snap in snapshots:
        if snap is newest:
            kept[str(snap.path)] = "newest snapshot"
        elif _is_protected(snap, protect):
            kept[str(snap.path)] = "protected (referenced by an unfinished run)"
        elif snap.created_unix >= cutoff:
            kept[str(snap.path)] = f"younger than {retention_days} days"
        else:
            delete.append(snap)
    return delete, kept


def prune(root: Path, retention_days: float = DEFAULT_RETENTION_DAYS, protect: Iterable[str] = (),
          check_mode: bool = False, now: Optional[float] = None) -> dict[str, Any]:
    """Delete expired snapshots under ``root`` (nothing in check mode); report what was (or would be) removed."""
    root = Path(root)
    if not root.is_dir():
        return {"changed": False, "pruned": [], "kept": {}, "message": f"{root} does not exist; nothing to prune"}
    delete, kept = plan_prune(find_snapshots(root), retention_days, protect, now)
    if not check_mode:
        for snap in delete:
            remove_tree(snap.path)
    verb = "would prune" if check_mode else "pruned"
    return {
        "changed": bool(delete),
        "pruned": [str(s.path) for s in delete],
        "kept": kept,
        "message": f"{verb} {len(delete)} snapshots older than {retention_days} days under {root}; kept {len(kept)}",
    }
