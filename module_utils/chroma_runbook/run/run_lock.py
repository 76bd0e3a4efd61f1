"""One migration at a time per target: an fcntl lock with its holder written inside.

The runbook keeps one lock file per target server (``<runs_dir>/locks/migrate-<key>.lock``, the key
derived from the target's URL or path, tenant and database), so two runs against one target never
write at once and a rollback can ask whether any migration still writes there (:func:`lock_status`).
Used without a lock directory, the lock is ``<checkpoint_dir>/migrate.lock`` (one per checkpoint).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
import time
from typing import Any, Optional

from ..io.connection import ConnectionSpec

LOCK_NAME = "migrate.lock"


class LockHeld(RuntimeError):
    """Another live process holds the lock; the message names it."""

    def __init__(self, path: str, holder: dict[str, Any]) -> None:
        self.path, self.holder = path, holder
        super().__init__(
            f"another migration holds {path}: PID {holder.get('pid', '?')} on host {holder.get('host', '?')}"
            f" (run_id {holder.get('run_id', '?')}, since {holder.get('since', '?')}, cmdline: "
            f"{holder.get('cmdline', '?')}); wait for it to finish or stop that process"
        )


def read_holder(path: str) -> dict[str, Any]:
    for _ in range(5):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            if text.strip():
                return json.loads(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def target_key(target: ConnectionSpec) -> str:
    """A file-name-safe key of a target server (credentials in its URL do not change it)."""
    bare_url = target.request_parts()[0] if target.url else ""
    basis = json.dumps([bare_url.rstrip("/").lower(), target.path and os.path.abspath(target.path),
                        target.tenant, target.database])
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def target_lock_path(lock_dir: str, target: ConnectionSpec) -> str:
    """The lock file every migration into ``target`` takes (one per target, whatever the run)."""
    return os.path.join(lock_dir, f"migrate-{target_key(target)}.lock")


class RunLock:
    """``with RunLock(dir, run_id):`` - exclusive, released by the kernel if the process dies.

    ``lock_path`` (e.g. :func:`target_lock_path`) replaces ``<checkpoint_dir>/migrate.lock``.
    """

    def __init__(self, checkpoint_dir: str, run_id: str, lock_path: Optional[str] = None) -> None:
        self.path = lock_path or os.path.join(checkpoint_dir, LOCK_NAME)
        self.run_id = run_id
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, read_holder(self.path)) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "run_id": self.run_id,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cmdline": " ".join(sys.argv)[:500],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_status(path: str) -> dict[str, Any]:
    """Whether a live process holds the lock at ``path`` (tried without blocking, nothing created).

    ``{"path", "held", "holder"}``; the holder (``pid``, ``host``, ``run_id``, ``since``, ``cmdline``)
    is what the process wrote when it took the lock. The kernel releases the lock of a dead process,
    so a stale file is not held.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return {"path": path, "held": False, "holder": {}}
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return {"path": path, "held": False, "holder": {}}
    except BlockingIOError:
        return {"path": path, "held": True, "holder": read_holder(path)}
    finally:
        os.close(fd)


def check_not_held(checkpoint_dir: str, lock_path: Optional[str] = None) -> None:
    """For dry runs: refuse when a migration is running, without creating anything."""
    status = lock_status(lock_path or os.path.join(checkpoint_dir, LOCK_NAME))
    if status["held"]:
        raise LockHeld(status["path"], status["holder"])
