"""Connection dicts (the contract every module shares) and Chroma clients.

A connection is ``{url: http(s)://host:port}`` or ``{path: /persist/dir}``,
plus optional ``tenant``, ``database``, ``headers``, ``ssl_verify``, ``timeout``.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional
from urllib.parse import unquote, urlparse

DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"

# Ansible argument_spec fragment for one connection dict; modules reuse it.
CONNECTION_ARG_SPEC: dict[str, Any] = {
    "url": {"type": "str"},
    "path": {"type": "path"},
    "tenant": {"type": "str", "default": DEFAULT_TENANT},
    "database": {"type": "str", "default": DEFAULT_DATABASE},
    "headers": {"type": "dict", "no_log": True, "default": {}},
    "ssl_verify": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 60.0},
}


def connection_option(required: bool = True) -> dict[str, Any]:
    """The argument_spec entry of one connection option (documented by the
    ``chroma_connection`` doc fragment): exactly one of url and path."""
    return {"type": "dict", "required": required, "options": CONNECTION_ARG_SPEC,
            "mutually_exclusive": [["url", "path"]], "required_one_of": [["url", "path"]]}


def mask_url(url: Any) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (for logs, errors and checkpoints)."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return text
    return f"{scheme}://***@{authority.rsplit('@', 1)[1]}{slash}{tail}"


class ConnectionError_(ValueError):
    """A connection dict that cannot describe a Chroma server."""


@dataclass(frozen=True)
class ConnectionSpec:
    """A validated connection dict."""

    url: Optional[str] = None
    path: Optional[str] = None
    tenant: str = DEFAULT_TENANT
    database: str = DEFAULT_DATABASE
    headers: Mapping[str, str] = field(default_factory=dict)
    ssl_verify: bool = True
    timeout: float = 60.0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], name: str = "connection") -> "ConnectionSpec":
        """Validate ``raw``; errors name the option (``name``) they concern."""
        if not isinstance(raw, Mapping):
            raise ConnectionError_(f"{name} must be a dict with 'url' or 'path', got {type(raw).__name__}")
        url, path = raw.get("url"), raw.get("path")
        if bool(url) == bool(path):
            shown = mask_url(url) if url else url
            raise ConnectionError_(f"{name} needs exactly one of 'url' or 'path' (got url={shown!r}, path={path!r})")
        if url:
            parsed = urlparse(str(url))
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConnectionError_(f"{name}.url must look like http(s)://host:port, got {mask_url(url)!r}")
        timeout = float(raw.get("timeout") or 60.0)
        if timeout <= 0:
            raise ConnectionError_(f"{name}.timeout must be > 0, got {timeout}")
        return cls(
            url=str(url).rstrip("/") if url else None,
            path=str(path) if path else None,
            tenant=str(raw.get("tenant") or DEFAULT_TENANT),
            database=str(raw.get("database") or DEFAULT_DATABASE),
            headers=dict(raw.get("headers") or {}),
            ssl_verify=bool(raw.get("ssl_verify", True)),
            timeout=timeout,
        )

    def request_parts(self) -> tuple[str, dict[str, str]]:
        """The URL without ``user:password@`` and the headers to send (Basic auth from the URL added)."""
        parsed = urlparse(self.url or "")
        headers = dict(self.headers)
        if parsed.username is None:
            return self.url or "", headers
        token = base64.b64encode(f"{unquote(parsed.username)}:{unquote(parsed.password or '')}".encode()).decode()
        headers.setdefault("Authorization", f"Basic {token}")
        bare = parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[1]).geturl()
        return bare, headers

    def describe(self) -> str:
        """A short, secret-free label for logs, errors and checkpoints (no headers, no password)."""
        where = mask_url(self.url) if self.url else f"path:{self.path}"
        if (self.tenant, self.database) != (DEFAULT_TENANT, DEFAULT_DATABASE):
            where += f" ({self.tenant}/{self.database})"
        return where


def tls_verify(ssl_verify: bool, https: bool) -> bool:
    """What the chromadb client is told to verify: ``ssl_verify`` over https; nothing over plain http, where no
    certificate is ever checked - asked to verify anyway, httpx loads the CA bundle for each of the client's
    connections (~65 ms each; several clients are made inside the write freeze)."""
    return ssl_verify if https else False


def connect(spec: ConnectionSpec | Mapping[str, Any]) -> Any:
    """Return a chromadb client for ``spec`` (imports chromadb lazily)."""
    if not isinstance(spec, ConnectionSpec):
        spec = ConnectionSpec.from_dict(spec)
    import chromadb
    from chromadb.config import Settings

    if spec.path:
        return chromadb.PersistentClient(
            path=spec.path,
            settings=Settings(anonymized_telemetry=False, allow_reset=False),
            tenant=spec.tenant,
            database=spec.database,
        )
    bare_url, headers = spec.request_parts()
    parsed = urlparse(bare_url)
    ssl = parsed.scheme == "https"
    port = parsed.port or (443 if ssl else 80)
    settings = Settings(anonymized_telemetry=False, chroma_server_ssl_verify=tls_verify(spec.ssl_verify, ssl))
    client = chromadb.HttpClient(
        host=parsed.hostname or "localhost",
        port=port,
        ssl=ssl,
        headers=headers or None,
        settings=settings,
        tenant=spec.tenant,
        database=spec.database,
    )
    _apply_timeout(client, spec.timeout)
    return client


def _apply_timeout(client: Any, timeout: float) -> None:
    """chromadb's HTTP session has no timeout; give it ours (best effort)."""
    try:
        import httpx

        session = client._server._session  # noqa: SLF001 - no public knob exists
        session.timeout = httpx.Timeout(timeout)
    except (AttributeError, ImportError):  # 0.4.x clients (the lab's legacy loader) use requests
        pass
