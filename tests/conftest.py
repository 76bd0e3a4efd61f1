"""Shared pytest fixtures: real Chroma servers on 127.0.0.1, stopped by PID."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "module_utils"))
sys.path.insert(0, str(REPO))

# group_vars mark Jinja-looking profile strings `!unsafe` so Ansible passes them to
# the modules verbatim; plain yaml.safe_load reads them as the strings they are.
import yaml  # noqa: E402

yaml.SafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))

# The server helper lives in lab/ so the benchmarks share it; tests import it from here too.
from lab.chroma_server import ChromaServer, free_port  # noqa: E402,F401


@pytest.fixture
def chroma_factory(tmp_path: Path) -> Iterator[Callable[[str], ChromaServer]]:
    """Start as many servers as a test needs; all are stopped (by PID) afterwards."""
    started: list[ChromaServer] = []

    def make(name: str = "chroma") -> ChromaServer:
        persist = tmp_path / f"{name}-data"
        persist.mkdir(exist_ok=True)
        server = ChromaServer(persist, free_port(), tmp_path / f"{name}.log").start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def chroma_pair(chroma_factory: Callable[[str], ChromaServer]) -> tuple[ChromaServer, ChromaServer]:
    """A source and a target server."""
    return chroma_factory("source"), chroma_factory("target")


@pytest.fixture(scope="session")
def legacy_venv() -> Callable[[str], Path]:
    """Build (first time) or reuse the pinned venv of a legacy Chroma under .cache/legacy/."""
    from lab import legacy

    return legacy.ensure_venv


@pytest.fixture
def legacy_factory(tmp_path: Path, legacy_venv: Callable[[str], Path]) -> Iterator[Callable[[str, str], ChromaServer]]:
    """Start Chroma 0.4.x/0.5.x servers from their own venvs (stopped by PID afterwards)."""
    from lab import legacy

    started: list[ChromaServer] = []

    def make(version: str, name: str = "legacy") -> ChromaServer:
        legacy_venv(version)
        persist = tmp_path / f"{name}-data"
        persist.mkdir(exist_ok=True)
        server = legacy.server(version, persist, free_port(), tmp_path / f"{name}.log").start(timeout=120)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with slow end-to-end tests first (same order in every xdist worker).

    ``make test`` runs two workers, one file each at a time (--dist loadfile); a lab-heavy file
    picked up last would leave one worker idle while the other finishes it. Tests keep their
    order inside a file; nothing is deselected.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    first_seen = {path: index for index, path in reversed(list(enumerate(item.path for item in items)))}
    items.sort(key=lambda item: (item.path not in slow_files, first_seen[item.path]))
