"""Health probes of the lab's endpoints (plain HTTP, short timeouts)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .layout import APP_PROGRAMS, LabLayout

HEARTBEAT = "/api/v2/heartbeat"
LEGACY_HEARTBEAT = "/api/v1/heartbeat"    # a 0.4/0.5 source (1.x answers 410 there)


@dataclass(frozen=True)
class Probe:
    """The answer of one endpoint."""

    component: str
    ok: bool
    detail: str
    body: Optional[dict[str, Any]] = None


def get_json(url: str, timeout: float = 3.0) -> tuple[int, Optional[dict[str, Any]]]:
    """(status, JSON body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


def probe_chroma(component: str, url: str) -> Probe:
    """Heartbeat of a 1.x server, or of a 0.4/0.5 one (v1 only)."""
    status, _ = get_json(url + HEARTBEAT)
    if status == 404:
        status, _ = get_json(url + LEGACY_HEARTBEAT)
    return Probe(component, status == 200, "heartbeat ok" if status == 200 else f"heartbeat: HTTP {status or 'down'}")


def probe_app(app: str, url: str) -> Probe:
    status, body = get_json(url + "/health", timeout=15.0)
    if not isinstance(body, dict):
        return Probe(app, False, f"/health: HTTP {status or 'down'}")
    if status == 200 and body.get("ok"):
        return Probe(app, True, f"chroma_url={body.get('chroma_url')} total={body.get('total')}", body)
    return Probe(app, False, f"/health {status}: {body.get('error', 'not ok')}", body)


def probe_all(layout: LabLayout) -> dict[str, Probe]:
    """Probe nginx (heartbeat through the front door), both Chromas and both apps."""
    probes = {
        "nginx": probe_chroma("nginx", layout.front_door_url),
        "source_chroma": probe_chroma("source_chroma", layout.url("source_chroma")),
        "target_chroma": probe_chroma("target_chroma", layout.url("target_chroma")),
    }
    probes.update({app: probe_app(app, layout.url(app)) for app in APP_PROGRAMS})
    return probes


def wait_healthy(layout: LabLayout, timeout: float, on_failure: Callable[[], Optional[str]]) -> dict[str, Probe]:
    """Probe until everything is healthy; ``on_failure`` may return a reason to stop early."""
    deadline = time.monotonic() + timeout
    while True:
        probes = probe_all(layout)
        if all(p.ok for p in probes.values()):
            return probes
        reason = on_failure()
        if reason or time.monotonic() > deadline:
            bad = "; ".join(f"{p.component}: {p.detail}" for p in probes.values() if not p.ok)
            raise TimeoutError(reason or f"not healthy after {timeout:.0f}s: {bad}")
        time.sleep(0.3)
