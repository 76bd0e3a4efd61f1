"""Physical snapshots: a checksummed copy of a Chroma persist directory, server stopped.

A live copy can tear the HNSW index (DESIGN.md), so both taking and restoring a
physical snapshot refuse while anything holds the directory: a server answering
on the given URL, or any process with a file under the directory open (psutil).
"""
from __future__ import annotations

import os
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..io.clock import utc_now, utc_stamp
from ..io.fsutil import copy_file_hashed, make_private_dir, publish_dir, remove_tree, temp_sibling
from .manifest import FORMAT, FORMAT_VERSION, SnapshotError, file_entry, load_manifest, verify_snapshot, write_manifest
from .snapshot import SnapshotRefused, SnapshotResult, chromadb_version, check_destination, new_snapshot_id

SQLITE_NAME = "chroma.sqlite3"
DATA_DIR = "data"


@dataclass
class PhysicalRestoreResult:
    """Outcome of a physical restore."""

    persist_dir: str
    snapshot_id: str
    changed: bool
    files: int = 0
    bytes: int = 0
    previous_moved_to: Optional[str] = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"persist_dir": self.persist_dir, "snapshot_id": self.snapshot_id, "changed": self.changed,
                "files": self.files, "bytes": self.bytes, "previous_moved_to": self.previous_moved_to,
                "message": self.message}


def server_answers(url: Optional[str], timeout: float = 2.0) -> bool:
    """True if a Chroma server answers its heartbeat at ``url``."""
    if not url:
        return False
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v2/heartbeat", timeout=timeout) as resp:
            return 200 <= resp.status < 500
    except OSError:
        return False


def processes_holding(directory: Path) -> list[str]:
    """'pid N (name): path' for every process with a file under ``directory`` open."""
    import psutil

    root = str(directory.resolve())
    prefix = root.rstrip("/") + "/"
    holders = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.info["pid"] == me:
            continue
        try:
            files = proc.open_files()
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        for handle in files:
            if handle.path == root or handle.path.startswith(prefix):
                holders.append(f"pid {proc.info['pid']} ({proc.info['name']}): {handle.path}")
                break
    return holders


def why_busy(persist_dir: Path, url: Optional[str]) -> list[str]:
    """Reasons a copy of ``persist_dir`` would not be consistent (empty list: safe)."""
    reasons = []
    if server_answers(url):
        reasons.append(f"a Chroma server answers at {url}; stop it first")
    reasons += [f"{h} is open" for h in processes_holding(persist_dir)]
    return reasons


def _require_idle(persist_dir: Path, url: Optional[str], action: str) -> None:
    busy = why_busy(persist_dir, url)
    if busy:
        raise SnapshotRefused(f"refusing to {action} {persist_dir} while the server uses it: " + "; ".join(busy))


def _copy_tree(src: Path, dst_root: Path, rel_prefix: str) -> dict[str, dict]:
    """Copy every regular file of ``src`` under ``dst_root/rel_prefix``; return manifest entries."""
    files: dict[str, dict] = {}
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        target = dst_root / rel_prefix / rel
        if path.is_dir():
            make_private_dir(target)
        elif path.is_file():
            make_private_dir(target.parent)
            files[f"{rel_prefix}/{rel}"] = file_entry(*copy_file_hashed(path, target))
    return files


def take_physical_snapshot(persist_dir: Path, dest: Path, url: Optional[str] = None,
                           snapshot_id: Optional[str] = None) -> SnapshotResult:
    """Copy a stopped server's persist directory into a verifiable snapshot at ``dest``."""
    persist_dir, dest = Path(persist_dir), Path(dest)
    if check_destination(dest) == "complete":
        manifest = load_manifest(dest)
        return SnapshotResult(str(dest), str(manifest.get("snapshot_id")), False,
                              total_bytes=int(manifest.get("totals", {}).get("bytes", 0)),
                              message=f"{dest} already holds snapshot {manifest.get('snapshot_id')}; left as it is")
    if not (persist_dir / SQLITE_NAME).is_file():
        raise SnapshotRefused(f"persist_dir {persist_dir} has no {SQLITE_NAME}: not a Chroma persist directory")
    _require_idle(persist_dir, url, "copy")
    started = time.monotonic()
    now = utc_now()
    snapshot_id = snapshot_id or new_snapshot_id(now)
    tmp = temp_sibling(dest)
    try:
        files = _copy_tree(persist_dir, tmp, DATA_DIR)
        _require_idle(persist_dir, url, "keep a copy of")  # something started during the copy
        data_bytes = sum(f["size"] for f in files.values())
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "physical",
            "snapshot_id": snapshot_id,
            "created_at": utc_stamp(now),
            "created_unix": now.timestamp(),
            "chromadb_version": chromadb_version(),
            "server": url or "",
            "persist_dir": str(persist_dir),
            "collections": [],
            "files": files,
            "totals": {"files": len(files), "bytes": data_bytes},
        }
        manifest_bytes = write_manifest(tmp, manifest)
        publish_dir(tmp, dest)
    except BaseException:
        remove_tree(tmp)
        raise
    return SnapshotResult(str(dest), snapshot_id, True, {}, 0, data_bytes + manifest_bytes,
                          time.monotonic() - started, f"physical snapshot {snapshot_id} of {persist_dir} written to {dest}")


def plan_physical_snapshot(persist_dir: Path, dest: Path, url: Optional[str]) -> SnapshotResult:
    """Check mode: refuse as the real run would, report the bytes that would be copied."""
    persist_dir, dest = Path(persist_dir), Path(dest)
    if check_destination(dest) == "complete":
        return SnapshotResult(str(dest), "", False, message=f"{dest} already holds a complete snapshot")
    if not (persist_dir / SQLITE_NAME).is_file():
        raise SnapshotRefused(f"persist_dir {persist_dir} has no {SQLITE_NAME}: not a Chroma persist directory")
    _require_idle(persist_dir, url, "copy")
    size = sum(p.stat().st_size for p in persist_dir.rglob("*") if p.is_file())
    return SnapshotResult(str(dest), "", True, total_bytes=size,
                          message=f"would copy {size} bytes of {persist_dir} to {dest}")


def restore_physical(snapshot_dir: Path, persist_dir: Path, url: Optional[str] = None,
                     check_mode: bool = False) -> PhysicalRestoreResult:
    """Verify a physical snapshot, then swap it in for ``persist_dir`` (old one kept aside)."""
    snapshot_dir, persist_dir = Path(snapshot_dir), Path(persist_dir)
    verified = verify_snapshot(snapshot_dir)
    if verified.kind != "physical":
        raise SnapshotError(f"{snapshot_dir} is a {verified.kind} snapshot; restore it into a server with target")
    if persist_dir.exists():
        _require_idle(persist_dir, url, "replace")
    elif server_answers(url):
        raise SnapshotRefused(f"refusing to restore {persist_dir}: a Chroma server answers at {url}; stop it first")
    result = PhysicalRestoreResult(str(persist_dir), verified.snapshot_id, not check_mode,
                                   verified.files_checked, verified.bytes_checked)
    if check_mode:
        result.message = f"snapshot verified; would replace {persist_dir} ({verified.files_checked} files)"
        return result
    tmp = temp_sibling(persist_dir, "restore")
    try:
        _copy_tree(snapshot_dir / DATA_DIR, tmp, ".")
        if persist_dir.exists():
            aside = persist_dir.with_name(f"{persist_dir.name}.pre-restore-{int(time.time())}")
            os.rename(persist_dir, aside)
            result.previous_moved_to = str(aside)
        publish_dir(tmp, persist_dir)
    except BaseException:
        remove_tree(tmp)
        raise
    result.message = f"{persist_dir} restored from {snapshot_dir}" + (
        f"; the previous directory is kept at {result.previous_moved_to}" if result.previous_moved_to else "")
    return result
