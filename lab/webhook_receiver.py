"""A small webhook receiver for the lab: it stands in for Slack and records what the runbook says.

    python -m lab.webhook_receiver --port N [--host 127.0.0.1] --log FILE

``POST /<anything>`` with a JSON body is appended to FILE (one JSON line:
``{"path", "body", "received_at"}``) and answered 200 ``ok`` as Slack does;
``POST /status/<code>`` answers ``<code>`` instead (a failing webhook).
``GET /messages`` returns the recorded messages. Listens on 127.0.0.1 only by default.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

MAX_BODY = 1 << 20


def read_messages(log: Path) -> list[dict[str, Any]]:
    """The messages recorded in ``log`` (empty when none)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


class Receiver(ThreadingHTTPServer):
    """The HTTP server and the file it appends to."""

    daemon_threads = True

    def __init__(self, host: str, port: int, log: Path) -> None:
        self.log, self.lock = log, threading.Lock()
        super().__init__((host, port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the log file is the record."""

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path != "/messages":
            self._answer(404, b"no route")
            return
        self._answer(200, json.dumps(read_messages(self.server.log)).encode(), "application/json")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if 0 < length <= MAX_BODY else b""
        if self.path.startswith("/status/"):
            code = int(self.path.rsplit("/", 1)[1] or 500)
            self._answer(code, b"failing on purpose")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._answer(400, b"invalid_payload")
            return
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            self._answer(400, b"missing_text")
            return
        entry = {"path": self.path, "body": body, "received_at": datetime.now(timezone.utc).isoformat()}
        with self.server.lock, open(self.server.log, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        self._answer(200, b"ok")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.webhook_receiver", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log", type=Path, required=True, help="JSON lines file the messages are appended to")
    args = parser.parse_args(argv)
    server = Receiver(args.host, args.port, args.log)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    print(f"webhook receiver on http://{args.host}:{args.port}, messages -> {args.log}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
