"""Watching an application after a cutover: latency and errors over a window.

Plain ``urllib``: one GET per interval against the app's search endpoint, a
sample is an error when the request fails, answers non-2xx, or (with
``results_key``) answers without results.
"""
from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Sample:
    at_s: float
    status: int
    latency_ms: float
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class Thresholds:
    max_avg_latency_ms: float = 500.0
    max_p95_latency_ms: Optional[float] = None
    max_error_rate: float = 0.0

    def validate(self) -> None:
        if self.max_avg_latency_ms <= 0:
            raise ValueError(f"max_avg_latency_ms must be > 0, got {self.max_avg_latency_ms}")
        if self.max_p95_latency_ms is not None and self.max_p95_latency_ms <= 0:
            raise ValueError(f"max_p95_latency_ms must be > 0, got {self.max_p95_latency_ms}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ValueError(f"max_error_rate must be within [0, 1], got {self.max_error_rate}")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty list."""
    if not values:
        raise ValueError("percentile of an empty list")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _has_results(body: bytes, results_key: str) -> bool:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    value = payload.get(results_key) if isinstance(payload, dict) else None
    return isinstance(value, list) and len(value) > 0


def take_sample(url: str, timeout_s: float, results_key: str, started: float) -> Sample:
    """One GET; never raises."""
    begin = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - operator-given URL
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        latency = (time.monotonic() - begin) * 1000
        return Sample(round(begin - started, 3), exc.code, round(latency, 2), False, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # refused, timed out, cut short
        latency = (time.monotonic() - begin) * 1000
        return Sample(round(begin - started, 3), -1, round(latency, 2), False, f"{type(exc).__name__}: {exc}")
    latency = (time.monotonic() - begin) * 1000
    if results_key and not _has_results(body, results_key):
        return Sample(round(begin - started, 3), status, round(latency, 2), False, f"no '{results_key}' in the answer")
    return Sample(round(begin - started, 3), status, round(latency, 2), 200 <= status < 300)


def judge(samples: list[Sample], thresholds: Thresholds) -> dict[str, Any]:
    """Stats of a window and whether it stayed within the thresholds."""
    if not samples:
        return {"ok": False, "reasons": ["no sample was taken"], "samples": 0}
    latencies = [s.latency_ms for s in samples]
    errors = [s for s in samples if not s.ok]
    stats = {
        "samples": len(samples),
        "errors": len(errors),
        "error_rate": round(len(errors) / len(samples), 4),
        "avg_latency_ms": round(sum(latencies) / len(latencies), 2),
        "p95_latency_ms": round(percentile(latencies, 95), 2),
        "max_latency_ms": round(max(latencies), 2),
        "first_errors": [asdict(s) for s in errors[:5]],
    }
    reasons = []
    if stats["avg_latency_ms"] > thresholds.max_avg_latency_ms:
        reasons.append(f"average latency {stats['avg_latency_ms']} ms > {thresholds.max_avg_latency_ms} ms")
    if thresholds.max_p95_latency_ms is not None and stats["p95_latency_ms"] > thresholds.max_p95_latency_ms:
        reasons.append(f"p95 latency {stats['p95_latency_ms']} ms > {thresholds.max_p95_latency_ms} ms")
    if stats["error_rate"] > thresholds.max_error_rate:
        reasons.append(
            f"{stats['errors']} of {stats['samples']} requests failed (rate {stats['error_rate']} > {thresholds.max_error_rate})"
            + (f", first: {errors[0].error}" if errors else "")
        )
    return dict(stats, ok=not reasons, reasons=reasons)


def watch(
    url: str,
    window_s: float,
    interval_s: float,
    thresholds: Thresholds,
    timeout_s: float = 5.0,
    results_key: str = "",
    min_samples: int = 1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Sample ``url`` every ``interval_s`` for ``window_s`` (at least ``min_samples`` times) and judge it."""
    thresholds.validate()
    if window_s < 0 or interval_s <= 0 or min_samples < 1:
        raise ValueError(f"need window_s >= 0, interval_s > 0, min_samples >= 1 (got {window_s}, {interval_s}, {min_samples})")
    started = clock()
    samples: list[Sample] = []
    while True:
        samples.append(take_sample(url, timeout_s, results_key, started))
        elapsed = clock() - started
        if elapsed >= window_s and len(samples) >= min_samples:
            break
        sleep(max(0.0, min(interval_s, window_s - elapsed) if elapsed < window_s else interval_s))
    verdict = judge(samples, thresholds)
    verdict["window_s"] = round(clock() - started, 3)
    return verdict
