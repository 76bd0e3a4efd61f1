"""Durable, private file writing: 0600 files, 0700 directories, fsync, checksums."""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, Optional

CHUNK = 1 << 20
FILE_MODE = 0o600
DIR_MODE = 0o700


def sha256_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 hex digest of ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a create or a rename) durable."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents, each with mode 0700 (existing ones are left alone)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        os.mkdir(directory, DIR_MODE)
        os.chmod(directory, DIR_MODE)


def temp_sibling(final: Path, tag: str = "tmp") -> Path:
    """A fresh hidden directory next to ``final`` (same filesystem, so rename is atomic)."""
    parent = final.parent
    if not parent.exists():
        make_private_dir(parent)
    tmp = parent / f".{final.name}.{tag}-{uuid.uuid4().hex[:12]}"
    os.mkdir(tmp, DIR_MODE)
    os.chmod(tmp, DIR_MODE)
    return tmp


def publish_dir(tmp: Path, final: Path) -> None:
    """Rename a complete temp directory into place and make the rename durable."""
    fsync_dir(tmp)
    os.rename(tmp, final)
    fsync_dir(final.parent)


def remove_tree(path: Path) -> None:
    """Remove a directory tree if it exists (used to discard incomplete work)."""
    if path.exists():
        shutil.rmtree(path)


class HashingWriter:
    """A new 0600 file that hashes and counts what is written, fsync'd on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        self._handle: Optional[BinaryIO] = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self._handle is not None, f"{self.path} is closed"
        self._handle.write(data)
        self._digest.update(data)
        self.size += len(data)

    def close(self) -> tuple[int, str]:
        """Flush, fsync and close; return (size, sha256)."""
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
        return self.size, self._digest.hexdigest()

    def __enter__(self) -> "HashingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_private_bytes(path: Path, data: bytes) -> tuple[int, str]:
    """Write a small file in one go (0600, fsync'd); return (size, sha256)."""
    with HashingWriter(path) as writer:
        writer.write(data)
    return writer.close()


def copy_file_hashed(src: Path, dst: Path) -> tuple[int, str]:
    """Copy ``src`` to a new 0600 file ``dst``, hashing as it goes."""
    with open(src, "rb") as handle, HashingWriter(dst) as writer:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            writer.write(chunk)
    return writer.close()


def dir_size(path: Path) -> int:
    """Total size of the regular files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
