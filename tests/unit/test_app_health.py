"""The health gate's engine (chroma_app_health): a real local HTTP server, and a server that never answers.

The second is the multi-host bug: a health URL on a host lost on the network hung each
request for the HTTP client's own timeout (30 s), times every retry, so a 10 s gate waited
for minutes. The deadline must bound the whole wait.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from chroma_runbook.run import app_health
from chroma_runbook.run.app_health import HealthExpectation, unhealthy_message, wait_until_healthy

TARGET = "http://127.0.0.1:9002"


class _Health(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        return


def _serve(answers: list[tuple[int, dict]]) -> Iterator[str]:
    handler = type("Handler", (_Health,), {"answers": list(answers)})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/health"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def restarting() -> Iterator[str]:
    """An app that answers 503, then ok on the source, then ok on the target."""
    yield from _serve([(503, {"ok": False}), (200, {"ok": True, "chroma_url": "http://127.0.0.1:8000"}),
                       (200, {"ok": True, "chroma_url": TARGET})])


@pytest.fixture
def silent() -> Iterator[str]:
    """A port that accepts the connection and never answers (a request hangs until its timeout)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/health"
    finally:
        sock.close()


def test_waits_past_unhealthy_answers_until_the_key_names_the_target(restarting: str) -> None:
    outcome = wait_until_healthy(restarting, HealthExpectation("chroma_url", equals=TARGET), timeout_s=10,
                                 interval_s=0.01)
    assert outcome["healthy"] and outcome["attempts"] == 3, outcome
    assert outcome["answer"]["chroma_url"] == TARGET
    assert outcome["healthy_at"].endswith("Z") and "." in outcome["healthy_at"]


def test_not_equals_is_met_as_soon_as_the_app_left_that_value(restarting: str) -> None:
    outcome = wait_until_healthy(restarting, HealthExpectation("chroma_url", not_equals=TARGET), timeout_s=10,
                                 interval_s=0.01)
    assert outcome["healthy"] and outcome["attempts"] == 2, outcome


def test_an_app_that_never_gets_there_fails_with_its_last_answer(restarting: str) -> None:
    expectation = HealthExpectation("chroma_url", equals="http://127.0.0.1:1")
    outcome = wait_until_healthy(restarting, expectation, timeout_s=0.5, interval_s=0.05)
    assert not outcome["healthy"] and outcome["healthy_at"] is None
    message = unhealthy_message(restarting, expectation, 0.5, outcome)
    assert restarting in message and "chroma_url=http://127.0.0.1:1" in message and TARGET in message, message


def test_a_host_that_never_answers_costs_the_deadline_not_the_client_timeout_per_retry(silent: str) -> None:
    # request_timeout_s 30 is the uri module's default; before the deadline cut each request
    # short, one request alone would have hung 30 s and the retries multiplied it.
    outcome = wait_until_healthy(silent, HealthExpectation(), timeout_s=1.0, interval_s=0.2, request_timeout_s=30)
    assert not outcome["healthy"] and outcome["status"] == -1, outcome
    assert outcome["waited_s"] < 5, outcome
    assert "timed out" in outcome["last_error"].lower(), outcome


def test_the_deadline_is_kept_with_a_clock_that_jumps(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def hangs(url: str, timeout_s: float) -> app_health.HealthAnswer:
        asked.append(timeout_s)
        sleep(timeout_s)
        return app_health.HealthAnswer(-1, None, "timed out")

    monkeypatch.setattr(app_health, "ask_health", hangs)
    outcome = wait_until_healthy("http://x/health", HealthExpectation(), timeout_s=5, interval_s=0.5,
                                 request_timeout_s=2, clock=lambda: now[0], sleep=sleep)
    assert not outcome["healthy"] and now[0] <= 5.0 + 1e-9, (outcome, now)
    assert max(asked) <= 2 and sum(asked) <= 5 + 1e-9, asked


@pytest.mark.parametrize("expectation", [HealthExpectation("k", equals="a", not_equals="b"),
                                         HealthExpectation("", equals="a")])
def test_contradictory_or_keyless_expectations_are_refused(expectation: HealthExpectation) -> None:
    with pytest.raises(ValueError):
        wait_until_healthy("http://127.0.0.1:1/health", expectation, timeout_s=1)


@pytest.mark.parametrize(("ok", "healthy"), [(True, True), ("true", True), (1, True), ("yes", True),
                                             (False, False), ("false", False), (None, False), (0, False)])
def test_ok_is_read_as_ansibles_bool_filter_reads_it(ok: object, healthy: bool) -> None:
    assert HealthExpectation().met_by({"ok": ok}) is healthy


def test_an_answer_cut_short_is_not_healthy_yet_and_the_gate_keeps_asking() -> None:
    """The lab's bug: an app going down for its restart sent its headers and closed the connection
    (IncompleteRead); the health gate raised instead of asking again, and the cutover rolled back."""
    good = json.dumps({"ok": True, "chroma_url": TARGET}).encode()
    asked: list[int] = []

    class CutShort(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            asked.append(1)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(good)))
            self.end_headers()
            if len(asked) > 2:
                self.wfile.write(good)
            # else: the body never comes, the connection closes (HTTP/1.0 handler)

        def log_message(self, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/health"
    try:
        first = app_health.ask_health(url, 2.0)
        assert first.status == -1 and "IncompleteRead" in first.error
        outcome = wait_until_healthy(url, HealthExpectation("chroma_url", TARGET), timeout_s=5, interval_s=0.05)
        assert outcome["healthy"] and outcome["attempts"] == 2, outcome
    finally:
        httpd.shutdown()
        httpd.server_close()
