"""Shared pytest fixtures: real Chroma servers on 127.0.0.1, stopped by PID."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "module_utils"))
sys.path.insert(0, str(REPO))

VENV_BIN = Path(sys.executable).parent

# group_vars mark Jinja-looking profile strings `!unsafe` so Ansible passes them to
# the modules verbatim; plain yaml.safe_load reads them as the strings they are.
import yaml  # noqa: E402

yaml.SafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """A `chroma run` child process bound to 127.0.0.1."""

    def __init__(self, persist: Path, port: int, log: Path) -> None:
        self.persist, self.port, self.log = persist, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> "ChromaServer":
        chroma = str(VENV_BIN / "chroma")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [chroma, "run", "--path", str(self.persist), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma on port {self.port} exited early: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma on port {self.port} did not answer within {timeout}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def client(self):  # noqa: ANN201 - chromadb ClientAPI
        import chromadb
        from chromadb.config import Settings

        return chromadb.HttpClient(
            host="127.0.0.1", port=self.port, settings=Settings(anonymized_telemetry=False)
        )

    @property
    def connection(self) -> dict[str, str]:
        return {"url": self.url}


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
