"""A JSON-lines run log: one object per line, flushed as it is written."""
from __future__ import annotations

import json
import os
import threading
from typing import Any, Optional

from .clock import utc_stamp
from .fsutil import open_private


class RunLog:
    """Appends ``{"ts", "event", ...}`` lines to ``path`` (or nowhere when path is None)."""

    def __init__(self, path: Optional[str], run_id: str = "") -> None:
        self.path = path
        self.run_id = run_id
        self._lock = threading.Lock()
        self._fh = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._fh = open_private(path, "a")

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        if self._fh is None:
            return
        line = {"ts": utc_stamp(precision="milliseconds"),  # one clock read
                "run_id": self.run_id, "level": level, "event": event, **fields}
        text = json.dumps(line, default=str, ensure_ascii=False)
        with self._lock:
            self._fh.write(text + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
