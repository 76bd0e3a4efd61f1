"""One migration at a time per checkpoint_dir: an fcntl lock with its holder written inside."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from typing import Any, Optional

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


class RunLock:
    """``with RunLock(dir, run_id):`` - exclusive, released by the kernel if the process dies."""

    def __init__(self, checkpoint_dir: str, run_id: str) -> None:
        self.path = os.path.join(checkpoint_dir, LOCK_NAME)
        self.run_id = run_id
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
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


def check_not_held(checkpoint_dir: str) -> None:
    """For dry runs: refuse when a migration is running, without creating anything."""
    path = os.path.join(checkpoint_dir, LOCK_NAME)
    if not os.path.exists(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise LockHeld(path, read_holder(path)) from None
    finally:
        os.close(fd)
