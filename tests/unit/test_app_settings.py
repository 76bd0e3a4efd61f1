"""App settings as a mapping: keys derived from a connection, written into .env or compose files."""
from __future__ import annotations

import pytest
import yaml

from chroma_runbook.run.app_settings import (
    MASK,
    AppSettingsError,
    derive,
    edit,
    mask,
    parse_header_pairs,
    read_values,
)

OPENWEBUI = {"CHROMA_HTTP_HOST": "host", "CHROMA_HTTP_PORT": "port", "CHROMA_HTTP_SSL": "ssl",
             "CHROMA_HTTP_HEADERS": "headers", "CHROMA_TENANT": "tenant", "CHROMA_DATABASE": "database"}
TARGET = {"url": "https://chroma-new.example:8443/", "headers": {"Authorization": "Bearer s3cr3t", "X-Team": "kb"},
          "tenant": "acme", "database": "kb"}


def values(settings: dict, connection: dict) -> dict[str, str]:
    return {s.key: s.value for s in derive(settings, connection)}


def test_openwebui_keys_derive_from_the_connection() -> None:
    assert values(OPENWEBUI, TARGET) == {
        "CHROMA_HTTP_HOST": "chroma-new.example", "CHROMA_HTTP_PORT": "8443", "CHROMA_HTTP_SSL": "true",
        "CHROMA_HTTP_HEADERS": "Authorization=Bearer s3cr3t,X-Team=kb", "CHROMA_TENANT": "acme", "CHROMA_DATABASE": "kb"}
    # Open WebUI's own parsing gives the headers back
    assert parse_header_pairs(values(OPENWEBUI, TARGET)["CHROMA_HTTP_HEADERS"]) == TARGET["headers"]
    assert [s.key for s in derive(OPENWEBUI, TARGET) if s.secret] == ["CHROMA_HTTP_HEADERS"]


def test_defaults_url_and_literal_values() -> None:
    got = values({"CHROMADB_URL": "url", "PORT": "port", "TENANT": "tenant", "HDR": {"from": "headers", "format": "json"},
                  "MODE": {"value": "remote"}}, {"url": "http://10.0.0.6"})
    assert got == {"CHROMADB_URL": "http://10.0.0.6", "PORT": "80", "TENANT": "default_tenant", "HDR": "", "MODE": "remote"}


@pytest.mark.parametrize(("settings", "connection", "message"), [
    ({"X": "hostname"}, TARGET, "settings.X: unknown source 'hostname'"),
    ({}, TARGET, "settings is empty"),
    ({"X": "url"}, {"url": "chroma:8000"}, "connection.url must look like"),
    ({"X": "headers"}, {"url": "http://h:1", "headers": {"A": "x,y"}}, "header 'A': a value with ','"),
    ({"bad key": "url"}, TARGET, "'bad key' is not a valid environment variable name"),
])
def test_bad_mappings_name_the_key(settings: dict, connection: dict, message: str) -> None:
    with pytest.raises(AppSettingsError, match=message):
        derive(settings, connection)


def test_env_file_keeps_comments_and_order_and_appends_missing_keys() -> None:
    text = "# Open WebUI\nWEBUI_NAME=Docs\nCHROMA_HTTP_HOST=old-host\nexport CHROMA_HTTP_PORT='8000'\n"
    new = edit(text, "env", values(OPENWEBUI, TARGET))
    assert new.splitlines()[:4] == ["# Open WebUI", "WEBUI_NAME=Docs", "CHROMA_HTTP_HOST=chroma-new.example",
                                    "export CHROMA_HTTP_PORT=\"8443\""]
    assert 'CHROMA_HTTP_HEADERS="Authorization=Bearer s3cr3t,X-Team=kb"' in new.splitlines()
    assert read_values(new, "env") == {"WEBUI_NAME": "Docs", **values(OPENWEBUI, TARGET)}
    assert edit(new, "env", values(OPENWEBUI, TARGET)) == new  # idempotent


COMPOSE_LIST = """\
services:
  open-webui:
    image: ghcr.io/open-webui/open-webui:main
    environment:
      - WEBUI_NAME=Docs   # kept
      - CHROMA_HTTP_HOST=chroma-old
      - "CHROMA_HTTP_PORT=8000"
    volumes:
      - data:/app/backend/data
  chroma:
    image: chromadb/chroma
    environment:
      - CHROMA_HTTP_HOST=must-not-change
volumes:
  data: {}
"""

COMPOSE_MAP = """\
services:
  open-webui:
    environment:
      WEBUI_NAME: Docs
      CHROMA_HTTP_HOST: "chroma-old"
    ports: ["3000:8080"]
"""

COMPOSE_NONE = """\
services:
  open-webui:
    image: ghcr.io/open-webui/open-webui:main

  other:
    image: x
"""


@pytest.mark.parametrize("text", [COMPOSE_LIST, COMPOSE_MAP, COMPOSE_NONE], ids=["list", "map", "no-environment"])
def test_compose_environment_is_edited_in_its_own_form(text: str) -> None:
    wanted = values(OPENWEBUI, TARGET)
    new = edit(text, "compose", wanted, service="open-webui")
    doc = yaml.safe_load(new)
    env = doc["services"]["open-webui"]["environment"]
    as_dict = dict(item.split("=", 1) for item in env) if isinstance(env, list) else env
    assert {k: str(as_dict[k]) for k in wanted} == wanted
    assert read_values(new, "compose", "open-webui") == {k: str(v) for k, v in as_dict.items()}
    assert edit(new, "compose", wanted, service="open-webui") == new
    if "chroma:" in text:
        assert doc["services"]["chroma"]["environment"] == ["CHROMA_HTTP_HOST=must-not-change"]
        assert doc["services"]["open-webui"]["volumes"] == ["data:/app/backend/data"]
        assert "# kept" in new
    assert list(doc["services"]) == list(yaml.safe_load(text)["services"])


def test_compose_list_at_the_keys_indent_and_dollar_escaping() -> None:
    text = "services:\n  app:\n    environment:\n    - CHROMADB_URL=http://old:1\n    image: x\n"
    new = edit(text, "compose", {"CHROMADB_URL": "http://new:2", "TOKEN": "a$b"}, service="app")
    doc = yaml.safe_load(new)
    assert doc["services"]["app"]["environment"] == ["CHROMADB_URL=http://new:2", "TOKEN=a$$b"]
    assert doc["services"]["app"]["image"] == "x"


@pytest.mark.parametrize(("text", "message"), [
    ("version: '3'\n", "no top-level 'services:'"),
    ("services:\n  other:\n    image: x\n", "service 'open-webui' not found"),
    ("services:\n  open-webui:\n    environment: {A: 1}\n", "written inline"),
])
def test_compose_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(AppSettingsError, match=message):
        edit(text, "compose", {"A": "2"}, service="open-webui")


@pytest.mark.parametrize(("fmt", "text"), [("env", "CHROMA_HTTP_HEADERS=Authorization=Bearer s3cr3t\nA=1\n"),
                                           ("compose", COMPOSE_LIST)])
def test_secret_values_are_masked(fmt: str, text: str) -> None:
    new = edit(text, fmt, values(OPENWEBUI, TARGET), service="open-webui")
    shown = mask(new, fmt, ["CHROMA_HTTP_HEADERS"], service="open-webui")
    assert "s3cr3t" in new and "s3cr3t" not in shown and MASK in shown
    assert "chroma-new.example" in shown
