"""The snapshot manifest: what a snapshot holds and the checksums that prove it.

A snapshot directory is valid only if ``manifest.json`` exists, its SHA-256
matches ``manifest.json.sha256``, and every file it lists has the recorded
size and SHA-256. Both manifest files are written last, inside a temporary
directory that is renamed into place, so an interrupted snapshot never looks
valid.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.fsutil import CHUNK, sha256_file, write_private_bytes

FORMAT = "chroma-runbook-snapshot"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MANIFEST_SUM_NAME = "manifest.json.sha256"
KINDS = ("logical", "physical")
RECORD_DIGEST_BYTES = 32  # SHA-256 (io/fingerprint.record_digest)


class SnapshotError(Exception):
    """A snapshot that cannot be trusted or used; the message names the file."""


@dataclass
class VerifyResult:
    """What verification looked at."""

    path: str
    kind: str
    snapshot_id: str
    files_checked: int = 0
    bytes_checked: int = 0
    collections: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "snapshot_id": self.snapshot_id,
            "files_checked": self.files_checked,
            "bytes_checked": self.bytes_checked,
            "collections": dict(self.collections),
        }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> int:
    """Write manifest.json and its checksum sidecar (0600, fsync'd); return bytes written."""
    data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    size, digest = write_private_bytes(directory / MANIFEST_NAME, data)
    sidecar = f"{digest}  {MANIFEST_NAME}\n".encode("ascii")
    side_size, _ = write_private_bytes(directory / MANIFEST_SUM_NAME, sidecar)
    return size + side_size


def load_manifest(directory: Path) -> dict[str, Any]:
    """Read and sanity-check a manifest; raise SnapshotError naming what is wrong."""
    manifest_path = directory / MANIFEST_NAME
    sum_path = directory / MANIFEST_SUM_NAME
    if not directory.is_dir():
        raise SnapshotError(f"snapshot directory {directory} does not exist")
    for required in (manifest_path, sum_path):
        if not required.is_file():
            raise SnapshotError(f"{required} is missing: not a complete snapshot")
    raw = manifest_path.read_bytes()
    expected = sum_path.read_text(encoding="ascii", errors="replace").split()[0] if sum_path.stat().st_size else ""
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise SnapshotError(f"{manifest_path} does not match its checksum in {MANIFEST_SUM_NAME} (file was changed)")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise SnapshotError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(
            f"{manifest_path}: unsupported format {manifest.get('format')!r} v{manifest.get('format_version')!r}"
        )
    if manifest.get("kind") not in KINDS:
        raise SnapshotError(f"{manifest_path}: unknown kind {manifest.get('kind')!r}")
    if not isinstance(manifest.get("files"), dict):
        raise SnapshotError(f"{manifest_path}: 'files' must be a mapping of path -> size/sha256")
    return manifest


def _safe_member(directory: Path, rel: str) -> Path:
    """Resolve a manifest path, refusing anything that escapes the snapshot."""
    candidate = (directory / rel).resolve()
    root = directory.resolve()
    if root != candidate and root not in candidate.parents:
        raise SnapshotError(f"manifest lists {rel!r}, which is outside the snapshot directory")
    return candidate


def count_lines(path: Path) -> int:
    """Number of newline-terminated lines in ``path``."""
    lines = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return lines
            lines += chunk.count(b"\n")


def verify_files(directory: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    """Check size and SHA-256 of every listed file; return (files, bytes)."""
    files, total = 0, 0
    for rel, info in sorted(manifest["files"].items()):
        path = _safe_member(directory, rel)
        if not path.is_file():
            raise SnapshotError(f"snapshot file {rel} is missing from {directory}")
        size = path.stat().st_size
        if size != info.get("size"):
            raise SnapshotError(f"snapshot file {rel} has {size} bytes, manifest says {info.get('size')}")
        _, digest = sha256_file(path)
        if digest != info.get("sha256"):
            raise SnapshotError(f"snapshot file {rel} fails its SHA-256 check (content changed)")
        files += 1
        total += size
    return files, total


def verify_logical_shapes(directory: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """Counts and dimensions agree with the files (records lines, embedding bytes)."""
    counts: dict[str, int] = {}
    for coll in manifest.get("collections", []):
        name, count, dim = coll["name"], int(coll["count"]), coll.get("dimension")
        files = coll["files"]
        for key in ("collection", "records", "embeddings"):
            if files.get(key) not in manifest["files"]:
                raise SnapshotError(f"collection {name}: its {key} file is not covered by the manifest checksums")
        lines = count_lines(directory / files["records"])
        if lines != count:
            raise SnapshotError(f"{files['records']}: {lines} records, manifest says {count} for collection {name}")
        if "digests" in files:  # a fingerprinted snapshot keeps each record's digest (32 bytes) beside it
            if files["digests"] not in manifest["files"]:
                raise SnapshotError(f"collection {name}: its digests file is not covered by the manifest checksums")
            digest_bytes = (directory / files["digests"]).stat().st_size
            if digest_bytes != count * RECORD_DIGEST_BYTES:
                raise SnapshotError(f"{files['digests']}: {digest_bytes} bytes, expected {count * RECORD_DIGEST_BYTES} "
                                    f"({count} x {RECORD_DIGEST_BYTES}) for {name}")
        emb_bytes = (directory / files["embeddings"]).stat().st_size
        expected = count * int(dim or 0) * 4
        if emb_bytes != expected:
            raise SnapshotError(
                f"{files['embeddings']}: {emb_bytes} bytes, expected {expected} ({count} x {dim} float32) for {name}"
            )
        counts[name] = count
    return counts


def verify_snapshot(directory: Path) -> VerifyResult:
    """Full verification before anything is restored from ``directory``."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    files, total = verify_files(directory, manifest)
    result = VerifyResult(
        path=str(directory),
        kind=manifest["kind"],
        snapshot_id=str(manifest.get("snapshot_id", "")),
        files_checked=files,
        bytes_checked=total,
    )
    if manifest["kind"] == "logical":
        result.collections = verify_logical_shapes(directory, manifest)
    return result


def looks_complete(directory: Path) -> bool:
    """Cheap test used by retention and idempotency: a manifest that passes its own checksum."""
    try:
        load_manifest(directory)
    except SnapshotError:
        return False
    return True


def file_entry(size: int, digest: str) -> dict[str, Any]:
    """One ``files`` entry of the manifest."""
    return {"size": size, "sha256": digest}
