"""The lab's configuration files, rendered from lab/templates/ into the lab directory.

supervisord.conf and nginx.conf are always rendered (and written only when their
content changes); http.d/upstream.conf and the apps' app.env are written only
when missing, because a cutover or a freeze may have edited them since.
"""
from __future__ import annotations

import os
import pwd
from pathlib import Path

import jinja2

from . import REPO
from .layout import APP_PROGRAMS, APP_STYLES, HOST, PROGRAMS, LabLayout

TEMPLATES = Path(__file__).with_name("templates")


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def supervisord_conf(layout: LabLayout, venv_bin: Path) -> str:
    programs = {p: layout.program_command(p, venv_bin) for p in PROGRAMS}
    return _env().get_template("supervisord.conf.j2").render(layout=layout, repo=REPO, programs=programs)


def nginx_conf(layout: LabLayout) -> str:
    # Workers started by a root master default to an unprivileged user that cannot
    # enter a private lab directory (e.g. pytest's tmp_path, mode 0700).
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    return _env().get_template("nginx.conf.j2").render(layout=layout, user=user)


def upstream_conf(layout: LabLayout) -> str:
    return (f"# The front door's backend (a cutover may point it elsewhere).\n"
            f"upstream chroma_front {{ server 127.0.0.1:{layout.port('source_chroma')}; }}\n")


def app_env(layout: LabLayout, app: str) -> str:
    head = (f"# {app}: the Chroma settings this demo app uses, read once at start-up.\n"
            f"# A cutover edits them and restarts the program: "
            f"supervisorctl -c {layout.supervisord_conf} restart {app}\n")
    return head + app_settings_lines(APP_STYLES[app], HOST, layout.port("nginx"))


def app_settings_lines(style: str, host: str, port: int) -> str:
    """The Chroma keys of a demo app of ``style`` pointing at http://host:port (the front door)."""
    if style == "openwebui":
        return (f"# Open WebUI's keys (comma-separated k=v headers)\n"
                f"CHROMA_HTTP_HOST={host}\nCHROMA_HTTP_PORT={port}\nCHROMA_HTTP_SSL=false\n"
                f"CHROMA_HTTP_HEADERS=\nCHROMA_TENANT=default_tenant\nCHROMA_DATABASE=default_database\n")
    return f"CHROMADB_URL=http://{host}:{port}\n"


def write_if_changed(path: Path, content: str) -> bool:
    """Write ``content`` unless the file already holds it; True when written."""
    if path.exists() and path.read_text(encoding="utf-8") == content:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(path)
    return True


def write_if_missing(path: Path, content: str) -> bool:
    """Write ``content`` only when ``path`` does not exist; True when written."""
    if path.exists():
        return False
    write_if_changed(path, content)
    return True


def render_all(layout: LabLayout, venv_bin: Path) -> list[Path]:
    """Create the lab's directories and files; returns the files written."""
    for directory in layout.directories():
        directory.mkdir(parents=True, exist_ok=True)
    written = []
    if write_if_changed(layout.supervisord_conf, supervisord_conf(layout, venv_bin)):
        written.append(layout.supervisord_conf)
    if write_if_changed(layout.nginx_conf, nginx_conf(layout)):
        written.append(layout.nginx_conf)
    if write_if_missing(layout.upstream_conf, upstream_conf(layout)):
        written.append(layout.upstream_conf)
    for app in APP_PROGRAMS:
        if write_if_missing(layout.app_env(app), app_env(layout, app)):
            written.append(layout.app_env(app))
    return written
