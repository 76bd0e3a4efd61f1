"""The monitoring window (chroma_app_probe's engine) against a real local HTTP server."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from chroma_runbook.run.app_probe import Sample, Thresholds, judge, percentile, take_sample, watch
from chroma_runbook.io.server_inventory import compare_counts


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path.startswith("/ok"):
            body, status = {"results": [{"id": "a"}]}, 200
        elif self.path.startswith("/empty"):
            body, status = {"results": []}, 200
        elif self.path.startswith("/cut"):  # headers, then the connection closes (an app going down)
            self.send_response(200)
            self.send_header("Content-Length", "349")
            self.end_headers()
            return
        else:
            body, status = {"error": "boom"}, 500
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_healthy_app_passes_the_window(server: str) -> None:
    verdict = watch(f"{server}/ok", window_s=0.3, interval_s=0.05, thresholds=Thresholds(), results_key="results")
    assert verdict["ok"] and verdict["samples"] >= 3 and verdict["errors"] == 0
    assert 0 < verdict["avg_latency_ms"] < 500


def test_empty_results_and_server_errors_fail_the_window_and_say_why(server: str) -> None:
    empty = watch(f"{server}/empty", 0.0, 0.05, Thresholds(), results_key="results", min_samples=2)
    assert not empty["ok"] and empty["errors"] == 2 and "no 'results'" in empty["reasons"][0]
    broken = watch(f"{server}/fail", 0.0, 0.05, Thresholds(max_error_rate=0.5), min_samples=2)
    assert not broken["ok"] and "HTTP 500" in broken["reasons"][0]


def test_nobody_listening_is_an_error_not_an_exception() -> None:
    verdict = watch("http://127.0.0.1:9/x", 0.0, 0.05, Thresholds(), timeout_s=0.5, min_samples=1)
    assert not verdict["ok"] and verdict["first_errors"][0]["status"] == -1


def test_latency_thresholds_are_applied() -> None:
    samples = [Sample(0.0, 200, 100.0, True), Sample(1.0, 200, 900.0, True)]
    assert judge(samples, Thresholds(max_avg_latency_ms=600))["ok"]
    slow = judge(samples, Thresholds(max_avg_latency_ms=400))
    assert not slow["ok"] and "average latency 500.0 ms > 400" in slow["reasons"][0]
    assert not judge(samples, Thresholds(max_avg_latency_ms=600, max_p95_latency_ms=800))["ok"]


def test_bad_thresholds_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="max_error_rate"):
        watch("http://127.0.0.1:9/", 1, 1, Thresholds(max_error_rate=2))


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 95) == 5.0
    assert percentile([1.0, 2.0], 50) == 1.0


def test_compare_counts_within_tolerance_and_naming_the_gaps() -> None:
    ok = compare_counts({"a": 10, "b": 5}, {"a": 10, "b": 4}, tolerance=1)
    assert ok.ok and ok.actual_total == 15
    bad = compare_counts({"a": 7, "c": 1, "b": -1}, {"a": 10, "b": 4}, tolerance=1)
    assert not bad.ok and bad.missing == ["b"] and bad.mismatches == {"a": {"expected": 10, "actual": 7}}
    assert bad.unexpected == ["c"]
    assert "missing collections: b" in bad.describe() and "a: 7 records, expected 10" in bad.describe()


def test_an_answer_cut_short_is_an_error_sample_not_a_crash(server: str) -> None:
    """A request the app cuts short (IncompleteRead) is one failed sample of the window."""
    sample = take_sample(f"{server}/cut", 2.0, "results", 0.0)
    assert not sample.ok and sample.status == -1 and "IncompleteRead" in sample.error
