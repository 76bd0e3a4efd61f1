"""A machine-wide ledger of ports (and lab subnets) just handed out, shared by every process.

``free_port()`` and ``free_port_base()`` (lab/chroma_server.py) check that a port is free, but the
server that binds it starts a moment later. Two processes picking at the same moment (pytest-xdist
workers, or two test sessions on one machine) could both see the same port free. Each pick is
therefore made under an exclusive lock on a ledger file and noted there for ``HOLD_S`` seconds,
long enough for any lab to bind what it was given; a later pick skips what the ledger holds.

The ledger lives in the temp directory (``$CHROMA_RUNBOOK_PORT_LEDGER`` overrides it). A missing,
unreadable or stale ledger only means fewer ports are skipped: it never blocks a pick.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

HOLD_S = 900.0
LEDGER_ENV = "CHROMA_RUNBOOK_PORT_LEDGER"


def ledger_path() -> Path:
    return Path(os.environ.get(LEDGER_ENV) or Path(tempfile.gettempdir()) / "chroma-runbook-ports.json")


def _load(path: Path, now: float) -> dict[str, float]:
    """Entries of the ledger that have not expired (key -> expiry time)."""
    try:
        held = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(held, dict):
        return {}
    return {str(key): float(until) for key, until in held.items()
            if isinstance(until, (int, float)) and until > now}


def reserve_keys(kind: str, pick: Callable[[set[int]], list[int]], hold_s: float = HOLD_S) -> list[int]:
    """Call ``pick(taken)`` under the ledger's lock and note what it returns as held ``kind`` numbers.

    ``taken`` is the set of numbers of that kind other callers were handed in the last ``hold_s`` seconds.
    """
    path = ledger_path()
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = time.time()
        held = _load(path, now)
        prefix = f"{kind}:"
        taken = {int(key[len(prefix):]) for key in held if key.startswith(prefix)}
        chosen = pick(taken)
        held.update({f"{prefix}{number}": now + hold_s for number in chosen})
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(held), encoding="utf-8")
        os.replace(tmp, path)
    return chosen


def reserve(pick: Callable[[set[int]], list[int]], hold_s: float = HOLD_S) -> list[int]:
    """Ports: ``pick(taken_ports)`` under the lock; what it returns is held for ``hold_s`` seconds."""
    return reserve_keys("port", pick, hold_s)
