"""Waiting for an application's health answer, with a real deadline.

An app is healthy when its health URL answers 200 with JSON ``{"ok": true, ...}``
and, when a ``key`` is given, ``answer[key]`` equals ``equals`` (the cutover: the
app now serves from the target) or differs from ``not_equals`` (the rollback: it
left the target). Every request is bounded by what is left of the deadline, so a
host lost on the network costs the timeout, not the timeout times the retries.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..io.clock import utc_stamp


@dataclass(frozen=True)
class HealthExpectation:
    """What a healthy answer must hold besides ``ok: true``."""

    key: str = ""
    equals: Optional[str] = None
    not_equals: Optional[str] = None

    def validate(self) -> None:
        if self.equals is not None and self.not_equals is not None:
            raise ValueError("equals and not_equals are mutually exclusive")
        if (self.equals is not None or self.not_equals is not None) and not self.key:
            raise ValueError("equals and not_equals need a key")

    def describe(self) -> str:
        if self.equals is not None:
            return f"ok=true and {self.key}={self.equals}"
        if self.not_equals is not None:
            return f"ok=true and {self.key} other than {self.not_equals}"
        return "ok=true"

    def met_by(self, answer: Any) -> bool:
        if not isinstance(answer, dict) or not _truthy(answer.get("ok")):
            return False
        if self.equals is not None:
            return str(answer.get(self.key, "")) == self.equals
        if self.not_equals is not None:
            return str(answer.get(self.key, "")) != self.not_equals
        return True


def _truthy(value: Any) -> bool:
    """``ok`` as Ansible's ``bool`` filter reads it (true, 1, "yes", "true", "on", "1")."""
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "on", "1", "y")
    return value is True or (isinstance(value, int) and value == 1)


@dataclass(frozen=True)
class HealthAnswer:
    status: int  # -1: no HTTP answer (refused, timed out, unreachable)
    answer: Any
    error: str = ""

    def summary(self) -> str:
        if self.status == -1:
            return self.error
        return f"HTTP {self.status} {json.dumps(self.answer)[:200] if self.answer is not None else self.error}"


def ask_health(url: str, timeout_s: float) -> HealthAnswer:
    """One GET of the health URL; never raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - operator-given URL
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        try:
            status, body = exc.code, exc.read() if exc.fp else b""
        except (http.client.HTTPException, OSError) as cut:  # the error page cut short: still that status
            return HealthAnswer(exc.code, None, f"the answer was cut short ({type(cut).__name__})")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        # HTTPException: an app going down mid-answer (IncompleteRead, a bad status line) - not healthy yet
        return HealthAnswer(-1, None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
    try:
        return HealthAnswer(status, json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return HealthAnswer(status, None, "the answer is not JSON")


def wait_until_healthy(
    url: str,
    expectation: HealthExpectation,
    timeout_s: float,
    interval_s: float = 0.2,
    request_timeout_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Ask ``url`` every ``interval_s`` until ``expectation`` holds or ``timeout_s`` has passed.

    Returns ``healthy``, ``healthy_at`` (the engine's clock when the good answer came),
    ``attempts``, ``waited_s``, ``status`` and ``answer`` (the last ones) and ``last_error``.
    """
    expectation.validate()
    if timeout_s <= 0 or interval_s <= 0 or request_timeout_s <= 0:
        raise ValueError(f"need timeout_s, interval_s and request_timeout_s > 0 (got {timeout_s}, {interval_s}, "
                         f"{request_timeout_s})")
    started = clock()
    deadline = started + timeout_s
    attempts = 0
    while True:
        attempts += 1
        last = ask_health(url, max(0.05, min(request_timeout_s, deadline - clock())))
        if last.status == 200 and expectation.met_by(last.answer):
            return _outcome(True, last, attempts, clock() - started, utc_stamp(precision="milliseconds"))
        left = deadline - clock()
        if left > interval_s:
            sleep(interval_s)
            continue
        return _outcome(False, last, attempts, clock() - started, None)


def _outcome(healthy: bool, last: HealthAnswer, attempts: int, waited: float, at: Optional[str]) -> dict[str, Any]:
    return {"healthy": healthy, "healthy_at": at, "attempts": attempts, "waited_s": round(waited, 3),
            "status": last.status, "answer": last.answer, "last_error": last.error}


def unhealthy_message(url: str, expectation: HealthExpectation, timeout_s: float, outcome: dict[str, Any]) -> str:
    last = HealthAnswer(outcome["status"], outcome["answer"], outcome["last_error"])
    return (f"{url} was not healthy ({expectation.describe()}) within {timeout_s:g} s "
            f"({outcome['attempts']} requests); last answer: {last.summary()}")
