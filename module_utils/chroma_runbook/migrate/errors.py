"""The error a migration run stops with (raised by the run and by its import strategies)."""
from __future__ import annotations

from typing import Any, Optional


class MigrationError(RuntimeError):
    """The run stopped; ``result`` holds what is known so far (for the module's fail_json)."""

    def __init__(self, message: str, result: Optional[dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.result = result or {}
