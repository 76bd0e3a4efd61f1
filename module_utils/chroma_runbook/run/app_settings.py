"""An application's Chroma settings: which keys it reads and how each derives from a connection.

An app declares a mapping ``{KEY: spec}``; ``spec`` names what the key holds,
taken from the connection dict the app must use (``{url, headers, tenant, database}``):

    url        http(s)://host:port (no trailing slash)
    host       the URL's host name
    port       the URL's port (443 for https, 80 for http when the URL has none)
    ssl        "true" when the URL is https, else "false"
    headers    the connection's headers, as comma-separated ``k=v`` pairs (Open WebUI's
               CHROMA_HTTP_HEADERS); ``{from: headers, format: json}`` writes a JSON object
    tenant     the connection's tenant (default_tenant)
    database   the connection's database (default_database)
    {value: literal}   a fixed value

Header values are secrets: the keys they go to are reported as secret, and every
rendering for humans (diffs, results) masks them.

The keys live in an ``.env`` file (``KEY=value`` lines) or in one service's
``environment:`` of a docker-compose file (list form ``- KEY=value`` or map form
``KEY: value``). Edits keep every other line, comment and the file's style;
missing keys are appended to the right block. No YAML library is needed (the
editor runs on the app's host).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

SOURCES = ("url", "host", "port", "ssl", "headers", "tenant", "database")
HEADER_FORMATS = ("pairs", "json")
FORMATS = ("env", "compose")
MASK = "********"
DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"


class AppSettingsError(ValueError):
    """A settings mapping, connection or file that cannot be used; the message names the key or line."""


@dataclass(frozen=True)
class Setting:
    """One key's value and whether it must never be shown."""

    key: str
    value: str
    secret: bool


def _url_parts(connection: Mapping[str, Any]) -> tuple[str, str, int, bool]:
    url = str(connection.get("url") or "").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AppSettingsError(f"connection.url must look like http(s)://host:port, got {url!r}")
    ssl = parts.scheme == "https"
    return url, parts.hostname, parts.port or (443 if ssl else 80), ssl


def format_headers(headers: Mapping[str, Any], style: str = "pairs") -> str:
    """Headers as the app expects them: ``k=v,k2=v2`` (Open WebUI) or a JSON object."""
    if style == "json":
        return json.dumps({str(k): str(v) for k, v in headers.items()}, separators=(",", ":")) if headers else ""
    for name, value in headers.items():
        for part, what in ((str(name), "name"), (str(value), "value")):
            if "," in part or "=" in part:  # Open WebUI splits on both: dict(p.split("=") for p in v.split(","))
                raise AppSettingsError(f"header {name!r}: a {what} with ',' or '=' cannot be written as k=v pairs; "
                                       f"use format json")
    return ",".join(f"{k}={v}" for k, v in headers.items())


def parse_header_pairs(text: str) -> dict[str, str]:
    """The reverse of :func:`format_headers` (pairs), as Open WebUI parses CHROMA_HTTP_HEADERS."""
    if not text:
        return {}
    return dict(pair.split("=") for pair in text.split(","))


def _spec(key: str, raw: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(raw, str):
        source, options = raw, {}
    elif isinstance(raw, Mapping):
        options = dict(raw)
        if "value" in options:
            return "value", options
        source = str(options.pop("from", ""))
    else:
        raise AppSettingsError(f"settings.{key}: expected one of {', '.join(SOURCES)} or a dict with 'from' or 'value', "
                               f"got {raw!r}")
    if source not in SOURCES:
        raise AppSettingsError(f"settings.{key}: unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    style = options.get("format", "pairs")
    if source == "headers" and style not in HEADER_FORMATS:
        raise AppSettingsError(f"settings.{key}.format: expected one of {', '.join(HEADER_FORMATS)}, got {style!r}")
    return source, options


def derive(settings: Mapping[str, Any], connection: Mapping[str, Any]) -> list[Setting]:
    """The value of every key of ``settings`` for ``connection``, in the mapping's order."""
    if not settings:
        raise AppSettingsError("settings is empty: name at least one key the app reads (e.g. CHROMADB_URL: url)")
    url, host, port, ssl = _url_parts(connection)
    headers = dict(connection.get("headers") or {})
    plain = {"url": url, "host": host, "port": str(port), "ssl": "true" if ssl else "false",
             "tenant": str(connection.get("tenant") or DEFAULT_TENANT),
             "database": str(connection.get("database") or DEFAULT_DATABASE)}
    found = []
    for key, raw in settings.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", str(key)):
            raise AppSettingsError(f"settings: {key!r} is not a valid environment variable name")
        source, options = _spec(str(key), raw)
        if source == "value":
            found.append(Setting(str(key), str(options["value"]), bool(options.get("secret", False))))
        elif source == "headers":
            found.append(Setting(str(key), format_headers(headers, options.get("format", "pairs")), True))
        else:
            found.append(Setting(str(key), plain[source], bool(options.get("secret", False))))
    return found


# .env files -------------------------------------------------------------------

_ENV_LINE = re.compile(r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=(?P<value>.*)$")


def _env_value(value: str, quote: Optional[str]) -> str:
    if quote is None and (not value or re.fullmatch(r"[^\s#'\"\\]*", value)):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _env_locate(lines: list[str]) -> dict[str, int]:
    """Index of the last line setting each key (the one a shell or dotenv keeps)."""
    found: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = _ENV_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            found[match.group("key")] = index
    return found


def _env_line(old: Optional[str], key: str, value: str) -> str:
    if old is None:
        return f"{key}={_env_value(value, None)}"
    match = _ENV_LINE.match(old)
    assert match is not None
    current = match.group("value").strip()
    quote = current[0] if current[:1] in ("'", '"') else None
    return f"{match.group('lead')}{key}={_env_value(value, quote)}"


def edit_env(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every key of ``values`` set (in place, or appended at the end)."""
    lines = text.splitlines()
    where = _env_locate(lines)
    for key, value in values.items():
        if key in where:
            lines[where[key]] = _env_line(lines[where[key]], key, value)
        else:
            lines.append(_env_line(None, key, value))
            where[key] = len(lines) - 1
    return "\n".join(lines) + "\n"


# docker-compose environment ----------------------------------------------------

def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _block_end(lines: list[str], start: int, indent: int, dash_items: bool = False) -> int:
    """First index after ``start`` whose content line is indented <= ``indent``.

    With ``dash_items``, ``- item`` lines at ``indent`` still belong to the block
    (YAML allows a list at its key's own indentation).
    """
    index = start + 1
    while index < len(lines):
        line = lines[index]
        if _is_content(line) and _indent(line) <= indent:
            if not (dash_items and _indent(line) == indent and line.lstrip().startswith("-")):
                break
        index += 1
    return index


def _find_key(lines: list[str], start: int, end: int, indent: Optional[int], key: str) -> Optional[int]:
    pattern = re.compile(r"^(?P<sp> *)(['\"]?)" + re.escape(key) + r"\2\s*:(?P<rest>.*)$")
    for index in range(start, end):
        match = pattern.match(lines[index])
        if match and (indent is None or len(match.group("sp")) == indent):
            return index
    return None


def _first_child_indent(lines: list[str], start: int, end: int) -> Optional[int]:
    for index in range(start + 1, end):
        if _is_content(lines[index]):
            return _indent(lines[index])
    return None


@dataclass
class _EnvBlock:
    header: int                 # index of the `environment:` line (or of the service line when missing)
    end: int                    # first index after the block
    item_indent: int
    form: str                   # list | map
    missing: bool               # no environment: key in the service yet


def _compose_block(lines: list[str], service: str) -> _EnvBlock:
    services = _find_key(lines, 0, len(lines), 0, "services")
    if services is None:
        raise AppSettingsError("no top-level 'services:' in the compose file")
    services_end = _block_end(lines, services, 0)
    child = _first_child_indent(lines, services, services_end)
    found = _find_key(lines, services + 1, services_end, child, service) if child is not None else None
    if found is None:
        raise AppSettingsError(f"service {service!r} not found under 'services:' in the compose file")
    service_end = _block_end(lines, found, child or 0)
    key_indent = _first_child_indent(lines, found, service_end)
    if key_indent is None:
        raise AppSettingsError(f"service {service!r} has no settings in the compose file")
    env = _find_key(lines, found + 1, service_end, key_indent, "environment")
    if env is None:
        while service_end > found + 1 and not _is_content(lines[service_end - 1]):
            service_end -= 1
        return _EnvBlock(service_end - 1, service_end, key_indent + 2, "map", True)
    rest = lines[env].split(":", 1)[1].strip()
    if rest and not rest.startswith("#"):
        raise AppSettingsError(f"line {env + 1}: 'environment: {rest}' is written inline; write it as a block "
                               f"(one '- KEY=value' or 'KEY: value' per line)")
    end = _block_end(lines, env, key_indent, dash_items=True)
    first = _first_child_indent(lines, env, end)
    form = "list" if _first_item(lines, env, end).startswith("-") else "map"
    while end > env + 1 and not _is_content(lines[end - 1]):
        end -= 1
    return _EnvBlock(env, end, first if first is not None else key_indent + 2, form, False)


def _first_item(lines: list[str], start: int, end: int) -> str:
    for index in range(start + 1, end):
        if _is_content(lines[index]):
            return lines[index].strip()
    return ""


_LIST_ITEM = re.compile(r"^(?P<sp> *)-\s*(?P<q>['\"]?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)(?:=(?P<value>.*?))?(?P=q)\s*$")
_MAP_ITEM = re.compile(r"^(?P<sp> *)(?P<q>['\"]?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)(?P=q)\s*:(?P<value>.*)$")


def _compose_locate(lines: list[str], block: _EnvBlock) -> dict[str, int]:
    found: dict[str, int] = {}
    if block.missing:
        return found
    pattern = _LIST_ITEM if block.form == "list" else _MAP_ITEM
    for index in range(block.header + 1, block.end):
        match = pattern.match(lines[index])
        if match and len(match.group("sp")) == block.item_indent:
            found[match.group("key")] = index
    return found


def _compose_line(block: _EnvBlock, key: str, value: str) -> str:
    escaped = value.replace("$", "$$")  # compose interpolates ${VAR}
    pad = " " * block.item_indent
    if block.form == "list":
        item = f"{key}={escaped}"
        return f"{pad}- {item}" if re.fullmatch(r"[A-Za-z0-9_.=/:@+,-]*", item) else f"{pad}- {json.dumps(item)}"
    return f"{pad}{key}: {json.dumps(escaped)}"


def edit_compose(text: str, service: str, values: Mapping[str, str]) -> str:
    """``text`` with every key of ``values`` set in ``service``'s environment (created if missing)."""
    lines = text.splitlines()
    block = _compose_block(lines, service)
    where = _compose_locate(lines, block)
    added: list[str] = []
    for key, value in values.items():
        if key in where:
            lines[where[key]] = _compose_line(block, key, value)
        else:
            added.append(_compose_line(block, key, value))
    if added:
        if block.missing:
            added.insert(0, " " * (block.item_indent - 2) + "environment:")
        lines[block.end:block.end] = added
    return "\n".join(lines) + "\n"


# both --------------------------------------------------------------------------

def edit(text: str, fmt: str, values: Mapping[str, str], service: str = "") -> str:
    """Set ``values`` in ``text`` written in ``fmt`` (env | compose)."""
    if fmt == "env":
        return edit_env(text, values)
    if fmt == "compose":
        if not service:
            raise AppSettingsError("format compose needs the compose service whose environment holds the keys")
        return edit_compose(text, service, values)
    raise AppSettingsError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def mask(text: str, fmt: str, secret_keys: list[str], service: str = "") -> str:
    """``text`` with the value of every secret key that it sets replaced by a mask (for diffs)."""
    if not secret_keys:
        return text
    lines = text.splitlines()
    if fmt == "env":
        for index, line in enumerate(lines):
            match = _ENV_LINE.match(line)
            if match and match.group("key") in secret_keys:
                lines[index] = f"{match.group('lead')}{match.group('key')}={MASK}"
    else:
        try:
            block = _compose_block(lines, service)
        except AppSettingsError:
            return text
        where = _compose_locate(lines, block)
        for key in secret_keys:
            if key in where:
                lines[where[key]] = _compose_line(block, key, MASK)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def read_values(text: str, fmt: str, service: str = "") -> dict[str, str]:
    """The keys a file sets (env: every line; compose: the service's environment), values unquoted."""
    lines = text.splitlines()
    values: dict[str, str] = {}
    if fmt == "env":
        for line in lines:
            match = _ENV_LINE.match(line)
            if match and not line.lstrip().startswith("#"):
                values[match.group("key")] = _unquote(match.group("value").strip())
        return values
    block = _compose_block(lines, service)
    for key, index in _compose_locate(lines, block).items():
        pattern = _LIST_ITEM if block.form == "list" else _MAP_ITEM
        match = pattern.match(lines[index])
        assert match is not None
        raw = match.group("value") or ""
        if not match.groupdict().get("q") and not raw.strip().startswith(("'", '"')):
            raw = re.sub(r"\s+#.*$", "", raw)  # a YAML comment after an unquoted value
        value = _unquote(raw.strip()) if block.form == "map" else raw
        values[key] = value.replace("$$", "$")
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value
