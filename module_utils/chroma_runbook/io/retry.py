"""Retrying transient errors (connection refused, timeouts, 5xx) with exponential backoff."""
from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")
MAX_BACKOFF_S = 30.0


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry may cure; False for ones it cannot (4xx, bad data)."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - chromadb depends on httpx
        httpx = None  # type: ignore[assignment]
    if httpx is not None:
        if isinstance(exc, httpx.TransportError):  # connect/read/write errors, timeouts, protocol errors
            return True
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            return status >= 500 or status == 429
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    code = getattr(exc, "code", None)
    if callable(code):  # chromadb.errors.ChromaError
        try:
            status = int(code())
        except Exception:  # noqa: BLE001 - a code() that fails says nothing
            return False
        return status >= 500 or status == 429
    return False


def call_with_retry(fn: Callable[[], T], max_retries: int, retry_delay: float,
                    on_retry: Optional[Callable[[int, BaseException, float], None]] = None,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn``; on a transient error wait retry_delay * 2**attempt (capped) and try again."""
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_transient(exc) or attempt >= max_retries:
                raise
            delay = min(retry_delay * (2 ** attempt), MAX_BACKOFF_S)
            if on_retry is not None:
                on_retry(attempt + 1, exc, delay)
            sleep(delay)
            attempt += 1
