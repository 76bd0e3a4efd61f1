"""The demo app's config file: CHROMADB_URL is read once, bad files are clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from lab.demo_app import ConfigError, chroma_url_from, read_env_file, settings_from


def test_reads_key_values_comments_quotes_and_export(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("# comment\n\nexport OTHER = x\nCHROMADB_URL=\"http://127.0.0.1:8000/\"\n")
    assert read_env_file(env) == {"OTHER": "x", "CHROMADB_URL": "http://127.0.0.1:8000/"}
    assert chroma_url_from(env) == "http://127.0.0.1:8000"


@pytest.mark.parametrize(("text", "message"), [
    ("CHROMADB_URL=127.0.0.1:8000\n", "CHROMADB_URL must look like http://host:port, got '127.0.0.1:8000'"),
    ("OTHER=1\n", "CHROMADB_URL must look like http://host:port, got ''"),
    ("just words\n", "app.env:1: expected KEY=VALUE"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    env = tmp_path / "app.env"
    env.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        chroma_url_from(env)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file .*missing.env"):
        chroma_url_from(tmp_path / "missing.env")


def test_openwebui_style_reads_its_keys_as_open_webui_does(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text("CHROMA_HTTP_HOST=10.0.0.6\nCHROMA_HTTP_PORT=8443\nCHROMA_HTTP_SSL=True\n"
                   "CHROMA_HTTP_HEADERS=\"Authorization=Bearer abc,X-Team=kb\"\nCHROMA_TENANT=acme\n")
    got = settings_from(env, "openwebui")
    assert (got.url, got.host, got.port, got.ssl) == ("https://10.0.0.6:8443", "10.0.0.6", 8443, True)
    assert got.headers == {"Authorization": "Bearer abc", "X-Team": "kb"}
    assert (got.tenant, got.database) == ("acme", "default_database")
    env.write_text("CHROMA_HTTP_HOST=h\nCHROMA_HTTP_HEADERS=\n")
    assert settings_from(env, "openwebui").headers == {} and settings_from(env, "openwebui").port == 8000
    env.write_text("CHROMADB_URL=http://h:1\n")
    with pytest.raises(ConfigError, match="CHROMA_HTTP_HOST is empty or missing"):
        settings_from(env, "openwebui")
