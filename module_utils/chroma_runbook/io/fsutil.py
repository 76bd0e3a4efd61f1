"""Durable, private file writing: 0600 files, 0700 directories, fsync, checksums, atomic replace."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

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


def write_atomic(path: Union[str, Path], data: Union[bytes, str], mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, never a mix:
    a temp file next to it, fsync'd, renamed over it, then the directory fsync'd. The one
    atomic writer of the engine (checkpoint, spool manifest, run state, reports)."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Union[str, Path], payload: Any, indent: int = 2, newline: bool = True,
                      mode: int = FILE_MODE) -> None:
    """``write_atomic`` of ``payload`` as JSON (keys sorted; values JSON cannot hold as str)."""
    text = json.dumps(payload, indent=indent, sort_keys=True, default=str)
    write_atomic(path, text + ("\n" if newline else ""), mode)


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


def open_private(path: Path | str, mode: str = "a") -> Any:
    """Open a file for writing (``"a"``, ``"w"``, ``"ab"`` or ``"wb"``), created 0600 whatever the umask.

    An existing file is made 0600 too: run logs, rejects and the spool hold user data.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(str(path), flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


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
