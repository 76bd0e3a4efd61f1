"""Running a function in a thread of lower CPU priority (Linux nice values are per thread).

While the import and the validation pass overlap, the pass must not slow the target down
when both share a host: it runs niced, and so do the page readers it starts (threads
inherit their creator's nice value). Where priorities cannot be changed it runs as is.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


def lower_priority(increment: int) -> bool:
    """Make the calling thread ``increment`` nicer; False where the OS does not allow it."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
        return True
    except (AttributeError, OSError):
        return False


def run_niced(func: Callable[[], T], increment: int, name: str = "niced") -> T:
    """``func()`` in a new thread made ``increment`` nicer; its result, or its exception re-raised."""
    outcome: dict[str, object] = {}

    def target() -> None:
        lower_priority(increment)
        try:
            outcome["value"] = func()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
