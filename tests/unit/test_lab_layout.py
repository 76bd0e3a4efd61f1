"""Pure parts of the lab controller: layout (ports, paths) and rendered configuration."""
from __future__ import annotations

from pathlib import Path

import pytest

from lab import render
from lab.layout import LabLayout, LayoutError
from lab.labctl import format_table


def test_ports_and_urls_follow_the_contract(tmp_path: Path) -> None:
    layout = LabLayout.create(tmp_path, 8000)
    assert layout.ports == {"nginx": 8000, "source_chroma": 8001, "target_chroma": 8002,
                            "app_openwebui": 8010, "app_chatbot": 8011}
    assert layout.front_door_url == "http://127.0.0.1:8000"
    assert layout.data_dir("source_chroma") == tmp_path / "data" / "source"
    assert layout.app_env("app_chatbot") == tmp_path / "apps" / "app_chatbot" / "app.env"


@pytest.mark.parametrize("base", [80, 65530])
def test_port_base_out_of_range_is_refused(tmp_path: Path, base: int) -> None:
    with pytest.raises(LayoutError, match=f"--port-base must be within 1024..65523, got {base}"):
        LabLayout.create(tmp_path, base)


def test_directory_too_long_for_a_unix_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="too long for a unix socket path"):
        LabLayout.create(tmp_path / ("x" * 120), 8000)


def test_programs_bind_loopback_on_their_ports(tmp_path: Path) -> None:
    layout = LabLayout.create(tmp_path, 21000)
    conf = render.supervisord_conf(layout, Path("/venv/bin"))
    assert f"command=/venv/bin/chroma run --path {tmp_path}/data/source --host 127.0.0.1 --port 21001" in conf
    assert "--name app_chatbot" in conf and "--host 127.0.0.1 --port 21011" in conf
    assert f"file={tmp_path}/supervisor.sock" in conf and "nodaemon=false" in conf
    nginx = render.nginx_conf(layout)
    assert "listen 127.0.0.1:21000;" in nginx and "proxy_pass http://chroma_front;" in nginx
    assert f"include {tmp_path}/nginx/server.d/*.conf;" in nginx
    assert f"include {tmp_path}/nginx/http.d/*.conf;" in nginx
    assert f"client_body_temp_path {tmp_path}/nginx/tmp/client_body;" in nginx
    assert "upstream chroma_front { server 127.0.0.1:21001; }" in render.upstream_conf(layout)
    assert "CHROMADB_URL=http://127.0.0.1:21000\n" in render.app_env(layout, "app_chatbot")
    owui = render.app_env(layout, "app_openwebui")
    assert "CHROMA_HTTP_HOST=127.0.0.1\nCHROMA_HTTP_PORT=21000\nCHROMA_HTTP_SSL=false\nCHROMA_HTTP_HEADERS=\n" in owui
    assert "CHROMADB_URL" not in owui and "--style openwebui" in conf


def test_render_never_overwrites_edited_app_env_or_upstream(tmp_path: Path) -> None:
    layout = LabLayout.create(tmp_path, 21000)
    written = render.render_all(layout, Path("/venv/bin"))
    assert layout.app_env("app_chatbot") in written and layout.upstream_conf in written
    layout.app_env("app_chatbot").write_text("CHROMADB_URL=http://127.0.0.1:21002\n")
    layout.upstream_conf.write_text("upstream chroma_front { server 127.0.0.1:21002; }\n")
    assert render.render_all(layout, Path("/venv/bin")) == []
    assert layout.app_env("app_chatbot").read_text() == "CHROMADB_URL=http://127.0.0.1:21002\n"
    assert "21002" in layout.upstream_conf.read_text()


def test_status_table_aligns_columns() -> None:
    table = format_table([("nginx", "8000", "12", "running", "ok: heartbeat ok")])
    header, row = table.splitlines()
    assert header.index("PORT") == row.index("8000") and header.index("HEALTH") == row.index("ok:")
