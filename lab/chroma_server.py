"""A throw-away `chroma run` on a free 127.0.0.1 port, stopped by its PID.

Shared by the pytest fixtures (tests/conftest.py) and the benchmarks (bench/).
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from . import ports

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now, and no other process was just handed.

    The port is noted in the shared ledger (lab/ports.py) so that a parallel pytest worker (or
    another session on the machine) does not get it too before our server binds it.
    """
    def pick(taken: set[int]) -> list[int]:
        for _ in range(100):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in taken:
                return [port]
        raise RuntimeError("no free 127.0.0.1 port that is not already handed out (lab/ports.py ledger)")

    return ports.reserve(pick)[0]


class ChromaServer:
    """A `chroma run` child process bound to 127.0.0.1."""

    def __init__(self, persist: Path, port: int, log: Path, bin_dir: Path = VENV_BIN,
                 heartbeat: str = "/api/v2/heartbeat") -> None:
        self.persist, self.port, self.log = persist, port, log
        self.bin_dir, self.heartbeat = bin_dir, heartbeat
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> "ChromaServer":
        chroma = str(self.bin_dir / "chroma")
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [chroma, "run", "--path", str(self.persist), "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma on port {self.port} exited early: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.heartbeat}", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"chroma on port {self.port} did not answer within {timeout}s, see {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def client(self) -> Any:
        """A chromadb HttpClient for this server."""
        import chromadb
        from chromadb.config import Settings

        return chromadb.HttpClient(host="127.0.0.1", port=self.port, settings=Settings(anonymized_telemetry=False))

    @property
    def connection(self) -> dict[str, str]:
        return {"url": self.url}


def start_in(directory: Path, name: str) -> ChromaServer:
    """Start a server persisting in ``directory/name`` and logging to ``directory/name.log``."""
    persist = directory / name
    persist.mkdir(parents=True, exist_ok=True)
    return ChromaServer(persist, free_port(), directory / f"{name}.log").start()


def port_free(port: int) -> bool:
    """True when nothing holds ``port`` on 127.0.0.1."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(low: int, high: int, span: int) -> int:
    """A random base in [low, high) whose ``span`` consecutive ports are all free (for a whole lab).

    The whole span is reserved in the shared ledger (lab/ports.py): two pytest workers asking at
    the same moment get disjoint spans, also while their labs are still starting.
    """
    rng = random.Random()

    def pick(taken: set[int]) -> list[int]:
        for _ in range(200):
            base = rng.randrange(low, high - span, span)
            span_ports = range(base, base + span)
            if not taken.intersection(span_ports) and all(port_free(port) for port in span_ports):
                return list(span_ports)
        raise RuntimeError(f"no free port base in {low}-{high}")

    return ports.reserve(pick)[0]
