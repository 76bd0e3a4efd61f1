"""A demo app standing in for Open WebUI / the chatbot: it reads and writes Chroma.

It reads its Chroma settings from its config file (``--config``, KEY=VALUE lines)
once, at start-up, exactly like the real consumers: a cutover edits that file
and restarts the service. Two styles (``--style``):

- ``url`` (the chatbot): ``CHROMADB_URL=http://host:port``;
- ``openwebui``: Open WebUI's keys ``CHROMA_HTTP_HOST``, ``CHROMA_HTTP_PORT``,
  ``CHROMA_HTTP_SSL``, ``CHROMA_HTTP_HEADERS`` (comma-separated ``k=v``),
  ``CHROMA_TENANT``, ``CHROMA_DATABASE``, parsed and handed to
  ``chromadb.HttpClient(host, port, ssl, headers, tenant, database)`` the way Open WebUI does.

API (all JSON)::

    GET  /health                          {"ok", "app", "chroma_url", "collections": {name: count}, "total",
                                           "header_names", "tenant", "database"}
                                          (HTTP 503 and ok=false when Chroma does not answer)
    GET  /search?q=..&collection=..&n=5   {"results": [{"id", "document", "distance", "metadata", "collection"}]}
    POST /remember {"collection", "id", "text"}   writes one record (status and error of Chroma passed through)

Queries are embedded with :mod:`lab.embedder` and sent as ``query_embeddings``
(never ``query_texts``, which would pull a model). One log line per request on stdout.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, quote, urlparse

from . import embedder

MAX_RESULTS = 50
MAX_BODY = 1 << 20
API = "/api/v2/tenants/{tenant}/databases/{database}"
STYLES = ("url", "openwebui")


class ConfigError(ValueError):
    """The app's config file is missing or lacks its Chroma settings."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, optional quotes) of ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def chroma_url_from(path: Path) -> str:
    """The validated CHROMADB_URL of the config file."""
    url = read_env_file(path).get("CHROMADB_URL", "")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{path}: CHROMADB_URL must look like http://host:port, got {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class ChromaSettings:
    """What the app read from its config file."""

    url: str
    style: str = "url"
    host: str = ""
    port: int = 0
    ssl: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    tenant: str = "default_tenant"
    database: str = "default_database"


def openwebui_settings_from(path: Path) -> ChromaSettings:
    """Open WebUI's Chroma keys, parsed as Open WebUI parses them (backend/open_webui/config.py)."""
    env = read_env_file(path)
    host = env.get("CHROMA_HTTP_HOST", "")
    if not host:
        raise ConfigError(f"{path}: CHROMA_HTTP_HOST is empty or missing")
    try:
        port = int(env.get("CHROMA_HTTP_PORT", "8000"))
    except ValueError as exc:
        raise ConfigError(f"{path}: CHROMA_HTTP_PORT must be an integer, got {env.get('CHROMA_HTTP_PORT')!r}") from exc
    ssl = env.get("CHROMA_HTTP_SSL", "false").lower() == "true"
    raw_headers = env.get("CHROMA_HTTP_HEADERS", "")
    try:
        headers = dict([pair.split("=") for pair in raw_headers.split(",")]) if raw_headers else {}
    except ValueError as exc:
        raise ConfigError(f"{path}: CHROMA_HTTP_HEADERS must be comma-separated k=v pairs") from exc
    url = f"{'https' if ssl else 'http'}://{host}:{port}"
    return ChromaSettings(url, "openwebui", host, port, ssl, headers,
                          env.get("CHROMA_TENANT") or "default_tenant", env.get("CHROMA_DATABASE") or "default_database")


def settings_from(path: Path, style: str) -> ChromaSettings:
    if style == "openwebui":
        return openwebui_settings_from(path)
    return ChromaSettings(chroma_url_from(path))


class ChromaGateway:
    """The app's only way to Chroma: a lazily created chromadb client."""

    def __init__(self, settings: ChromaSettings | str, timeout: float = 10.0) -> None:
        self.settings = settings if isinstance(settings, ChromaSettings) else ChromaSettings(settings)
        self.url, self.timeout = self.settings.url, timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        s = self.settings
        legacy = self._legacy_reader()
        if legacy is not None:   # a 0.4/0.5 server: the app's client matches it (plain v1 HTTP here)
            return legacy
        if s.style == "openwebui":
            import chromadb
            from chromadb.config import Settings

            return chromadb.HttpClient(host=s.host, port=s.port, ssl=s.ssl, headers=dict(s.headers) or None,
                                       tenant=s.tenant, database=s.database,
                                       settings=Settings(allow_reset=True, anonymized_telemetry=False))
        from chroma_runbook.io.connection import connect

        return connect({"url": self.url, "timeout": self.timeout})

    def _legacy_reader(self) -> Any:
        """The engine's v1 reader when the server runs Chroma 0.4/0.5, else None."""
        from chroma_runbook.io.connection import ConnectionSpec
        from chroma_runbook.io.source import HttpSource, probe_version

        spec = ConnectionSpec.from_dict({"url": self.url, "headers": dict(self.settings.headers),
                                         "timeout": self.timeout})
        version = probe_version(spec)
        return HttpSource(spec, version) if version.legacy else None

    def api_prefix(self) -> str:
        """Where collections live on this server's REST API (v1 on a 0.4/0.5 server)."""
        from chroma_runbook.io.source import HttpSource

        try:
            legacy = isinstance(self.client(), HttpSource)
        except Exception:  # noqa: BLE001 - unreachable: the request itself reports it
            legacy = False
        if legacy:
            return "/api/v1"
        return API.format(tenant=quote(self.settings.tenant, safe=""), database=quote(self.settings.database, safe=""))

    def warm_up(self) -> Optional[str]:
        """Import chromadb and connect before serving, so the first /health is quick; the error if any."""
        try:
            self.client()
        except Exception as exc:  # noqa: BLE001 - retried on the next request, reported by /health
            return f"{type(exc).__name__}: {exc}"
        return None

    def counts(self) -> dict[str, int]:
        client = self.client()
        return {col.name: col.count() for col in sorted(client.list_collections(), key=lambda c: c.name)}

    def search(self, query: str, collection: Optional[str], n: int) -> list[dict[str, Any]]:
        client = self.client()
        vector = embedder.embed(query)
        names = [collection] if collection else [c.name for c in client.list_collections()]
        results: list[dict[str, Any]] = []
        for name in names:
            col = client.get_collection(name, embedding_function=None)
            found = col.query(query_embeddings=[vector], n_results=n,
                              include=["documents", "metadatas", "distances"])
            for rid, doc, dist, meta in zip(found["ids"][0], found["documents"][0],
                                            found["distances"][0], found["metadatas"][0]):
                results.append({"id": rid, "document": doc, "distance": float(dist),
                                "metadata": meta, "collection": name})
        results.sort(key=lambda r: r["distance"])
        return results[:n]

    def remember(self, app: str, collection: str, rid: str, text: str) -> tuple[int, dict[str, Any]]:
        """Add one record over plain HTTP, so a refusal's status and JSON body reach the caller unchanged."""
        status, found = self._http("GET", f"/collections/{quote(collection, safe='')}")
        if status != 200:
            return status, found
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        metadata = {"source": f"app/{app}", "file": f"apps/{app}/remember", "line": 0, "author": app,
                    "category": "memory", "lang": "en", "score": 1.0, "created_at": now,
                    "chunk_index": 0, "reviewed": False}
        body = {"ids": [rid], "embeddings": [embedder.embed(text).tolist()], "documents": [text],
                "metadatas": [metadata]}
        status, answer = self._http("POST", f"/collections/{found['id']}/add", body)
        if 200 <= status < 300:
            return 201, {"ok": True, "collection": collection, "id": rid}
        return status, answer

    def _http(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + self.api_prefix() + path, data=data, method=method,
                                         headers={**self.settings.headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return resp.status, _json_or_text(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json_or_text(exc.read())
        except OSError as exc:
            return 503, {"error": "ChromaUnreachable", "message": f"{self.url}: {exc}"}


def _json_or_text(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {"error": "NonJsonResponse", "message": raw.decode("utf-8", "replace")[:500]}
    return value if isinstance(value, dict) else {"value": value}


def _error_status(exc: Exception) -> int:
    """HTTP status for an exception raised by the chromadb client."""
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            return int(code())
        except (TypeError, ValueError):
            return 502
    return 503


class AppHandler(BaseHTTPRequestHandler):
    """Routes of the demo app; ``server`` is a :class:`DemoApp`."""

    server: "DemoApp"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default stderr log; :meth:`_send` logs one line per request."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        started = time.monotonic()
        parsed = urlparse(self.path)
        if parsed.path == "/health":
            self._send(*self._health(), started)
        elif parsed.path == "/search":
            self._send(*self._search(parse_qs(parsed.query)), started)
        else:
            self._send(404, {"error": "NotFound", "message": f"no route {parsed.path}"}, started)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        started = time.monotonic()
        if urlparse(self.path).path != "/remember":
            self._send(404, {"error": "NotFound", "message": f"no route {self.path}"}, started)
            return
        self._send(*self._remember(), started)

    def _health(self) -> tuple[int, dict[str, Any]]:
        app = self.server
        settings = app.gateway.settings
        body: dict[str, Any] = {"ok": False, "app": app.name, "chroma_url": app.gateway.url,
                                "collections": {}, "total": 0, "header_names": sorted(settings.headers),
                                "tenant": settings.tenant, "database": settings.database}
        try:
            counts = app.gateway.counts()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", said in the body
            body["error"] = f"{type(exc).__name__}: {exc}"
            return 503, body
        body.update(ok=True, collections=counts, total=sum(counts.values()))
        return 200, body

    def _search(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        text = (query.get("q") or [""])[0]
        collection = (query.get("collection") or [None])[0] or None
        try:
            n = int((query.get("n") or ["5"])[0])
        except ValueError:
            return 400, {"error": "BadRequest", "message": "n must be an integer"}
        if not embedder.content_words(text):
            return 400, {"error": "BadRequest", "message": "q must contain at least one word that is not a stop word"}
        if not 1 <= n <= MAX_RESULTS:
            return 400, {"error": "BadRequest", "message": f"n must be within 1..{MAX_RESULTS}, got {n}"}
        try:
            results = self.server.gateway.search(text, collection, n)
        except Exception as exc:  # noqa: BLE001 - passed to the caller with Chroma's message
            return _error_status(exc), {"error": type(exc).__name__, "message": str(exc)}
        return 200, {"results": results, "collection": collection, "chroma_url": self.server.gateway.url}

    def _remember(self) -> tuple[int, dict[str, Any]]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return 400, {"error": "BadRequest", "message": f"body must be 1..{MAX_BODY} bytes of JSON"}
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            return 400, {"error": "BadRequest", "message": "body is not JSON"}
        missing = [k for k in ("collection", "id", "text") if not isinstance(payload.get(k), str) or not payload[k]]
        if missing:
            return 400, {"error": "BadRequest", "message": f"missing or empty string fields: {', '.join(missing)}"}
        if not embedder.content_words(payload["text"]):
            return 400, {"error": "BadRequest", "message": "text must contain at least one word that is not a stop word"}
        return self.server.gateway.remember(self.server.name, payload["collection"], payload["id"], payload["text"])

    def _send(self, status: int, body: dict[str, Any], started: float) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        elapsed = (time.monotonic() - started) * 1000
        print(f"{stamp} {self.server.name} {self.command} {self.path} {status} {elapsed:.1f}ms", flush=True)


class DemoApp(ThreadingHTTPServer):
    """The HTTP server plus what the handlers need."""

    daemon_threads = True

    def __init__(self, name: str, port: int, gateway: ChromaGateway, host: str = "127.0.0.1") -> None:
        self.name, self.gateway = name, gateway
        super().__init__((host, port), AppHandler)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.demo_app", description="Lab demo app (reads Chroma).")
    parser.add_argument("--name", required=True, help="app name, e.g. app_openwebui")
    parser.add_argument("--config", required=True, type=Path, help="KEY=VALUE file with the Chroma settings")
    parser.add_argument("--style", choices=STYLES, default="url",
                        help="url: CHROMADB_URL; openwebui: Open WebUI's CHROMA_HTTP_* keys")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args.config, args.style)
    except ConfigError as exc:
        print(f"{args.name}: {exc}", file=sys.stderr, flush=True)
        return 2
    url = settings.url
    gateway = ChromaGateway(settings)
    problem = gateway.warm_up()
    if problem:
        print(f"{args.name}: Chroma at {url} does not answer yet ({problem}); /health says so until it does",
              flush=True)
    app = DemoApp(args.name, args.port, gateway, args.host)
    print(f"{args.name}: listening on http://{args.host}:{args.port}, Chroma at {url} ({args.style} settings from "
          f"{args.config}; headers: {', '.join(sorted(settings.headers)) or 'none'})", flush=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        app.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        app.server_close()
        print(f"{args.name}: stopped", flush=True)
    return 0


def _exit_on_signal(signum: int, frame: Any) -> None:
    """SIGTERM (supervisorctl stop/restart) ends serve_forever cleanly."""
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
