"""Operator notifications: one Slack-compatible JSON message (``{"text": ...}``) to each webhook.

A webhook that fails (refused, timed out, non-2xx) is reported back, never
raised: a notification must not stop or fail the runbook.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Optional
from urllib.parse import urlsplit

USER_AGENT = "chroma-runbook-notify/1"


@dataclass(frozen=True)
class Delivery:
    """What one webhook answered."""

    url: str
    ok: bool
    status: Optional[int]
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def redact(url: str) -> str:
    """scheme://host[:port]/... : the path of a Slack webhook is its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}" + ("/..." if parts.path not in ("", "/") else "")


def payload(text: str) -> bytes:
    return json.dumps({"text": text}).encode("utf-8")


def post(url: str, text: str, timeout: float = 5.0) -> Delivery:
    """POST ``{"text": text}`` to ``url``; the outcome, never an exception."""
    if urlsplit(url).scheme not in ("http", "https"):
        return Delivery(redact(url), False, None, "not an http(s) URL")
    request = urllib.request.Request(url, data=payload(text), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Delivery(redact(url), 200 <= resp.status < 300, resp.status)
    except urllib.error.HTTPError as exc:
        return Delivery(redact(url), False, exc.code, f"HTTP {exc.code} {exc.reason}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Delivery(redact(url), False, None, f"{type(exc).__name__}: {reason}")


def notify(urls: list[str], text: str, timeout: float = 5.0) -> list[Delivery]:
    """Send ``text`` to every URL, one after the other."""
    return [post(url, text, timeout) for url in urls]
