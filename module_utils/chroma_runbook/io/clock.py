"""The engine's one clock: UTC now and the ISO-8601 forms every record uses.

``utc_stamp()`` gives ``2026-01-31T12:00:00Z`` (``precision="milliseconds"`` adds
``.123``); ``compact_stamp()`` gives ``20260131T120000Z`` for ids. Each reads the
clock once (or formats the ``moment`` it is given).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_stamp(moment: Optional[datetime] = None, precision: str = "seconds") -> str:
    """ISO-8601 UTC with a ``Z`` (``precision``: seconds or milliseconds)."""
    return (moment or utc_now()).astimezone(timezone.utc).isoformat(timespec=precision).replace("+00:00", "Z")


def compact_stamp(moment: Optional[datetime] = None) -> str:
    """``YYYYmmddTHHMMSSZ``, for run and snapshot ids."""
    return (moment or utc_now()).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
