"""Chroma 0.4.x / 0.5.x, each from its own pinned venv under .cache/ (the servers people upgrade from).

    python -m lab.legacy venv  [--version 0.4.24|0.5.23|all]     # build (or reuse) the venv(s)
    python -m lab.legacy serve --version 0.4.24 --path DIR [--port 8000]
    python -m lab.legacy load  --version 0.4.24 --url URL [--scale F]   # the lab dataset, that version's client

``serve`` is what an operator does with a persist directory the runbook refuses
to open (an old ``path:`` source): run that directory's own Chroma version and
migrate from its URL. A venv is reused when its ``.installed`` stamp names the
same pins; building one takes a minute or two (pip, no compiler needed).
"""
from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from . import REPO
from .chroma_server import ChromaServer

# Pins that install and run on Python 3.11 here (newer numpy/fastapi/posthog break these servers).
PINS: dict[str, list[str]] = {
    "0.4.24": ["chromadb==0.4.24", "numpy==1.26.4", "fastapi==0.110.0", "posthog==3.4.2"],
    "0.5.23": ["chromadb==0.5.23", "fastapi==0.115.6", "posthog<6"],
}
VERSIONS = tuple(PINS)
CACHE = Path(os.environ.get("CHROMA_RUNBOOK_LEGACY_CACHE", str(REPO / ".cache" / "legacy")))
HEARTBEAT = "/api/v1/heartbeat"


def venv_dir(version: str) -> Path:
    """Where the venv of ``version`` lives (.cache/legacy/chromadb-<version>)."""
    if version not in PINS:
        raise ValueError(f"no pinned legacy Chroma {version!r}; known: {', '.join(VERSIONS)}")
    return CACHE / f"chromadb-{version}"


def bin_dir(version: str) -> Path:
    return venv_dir(version) / "bin"


def ensure_venv(version: str, python: Optional[str] = None, quiet: bool = True) -> Path:
    """Build the pinned venv of ``version`` unless a complete one exists; returns its bin dir.

    A lock file serialises concurrent builders (pytest workers, make, the lab).
    """
    target = venv_dir(version)
    stamp = target / ".installed"
    wanted = "\n".join(PINS[version]) + "\n"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".lock-{version}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == wanted and (target / "bin" / "chroma").exists():
            return target / "bin"
        interpreter = python or _base_python()
        subprocess.run([interpreter, "-m", "venv", "--clear", str(target)], check=True)
        pip = [str(target / "bin" / "pip"), "install", "--disable-pip-version-check"] + (["-q"] if quiet else [])
        result = subprocess.run(pip + PINS[version], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(PINS[version])} into {target} failed:\n"
                               f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
        stamp.write_text(wanted)
    return target / "bin"


def _base_python() -> str:
    """The interpreter the project's venv was made from (a venv's own python would nest venvs fine too)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if Path(base).exists() else sys.executable


def server(version: str, persist: Path, port: int, log: Path) -> ChromaServer:
    """A `chroma run` of ``version`` (not started), answering on /api/v1."""
    return ChromaServer(persist, port, log, bin_dir=bin_dir(version), heartbeat=HEARTBEAT)


def run_in_venv(version: str, args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run ``python args...`` in the venv of ``version`` with the repo (lab, engine) importable."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "module_utils")]),
               ANONYMIZED_TELEMETRY="False")
    # cwd: old clients write chroma.log into the working directory; keep it out of the repo
    return subprocess.run([str(bin_dir(version) / "python"), *args], cwd=str(venv_dir(version)), env=env,
                          capture_output=True, text=True, timeout=timeout)


def load_dataset(version: str, url: str, variant: str = "legacy", scale: float = 1.0, seed: Optional[int] = None) -> str:
    """Load the lab dataset into a legacy server with that version's own client; returns its summary line."""
    args = ["-m", "lab.dataset", "--url", url, "--variant", variant, "--scale", str(scale)]
    if seed is not None:
        args += ["--seed", str(seed)]
    result = run_in_venv(version, args)
    if result.returncode != 0:
        raise RuntimeError(f"loading the dataset into Chroma {version} at {url} failed: "
                           f"{result.stderr[-2000:] or result.stdout[-2000:]}")
    return result.stdout.strip()


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.legacy", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    venv = sub.add_parser("venv", help="build (or reuse) the pinned venv(s)")
    venv.add_argument("--version", choices=[*VERSIONS, "all"], default="all")
    serve = sub.add_parser("serve", help="run `chroma run --path DIR` from that version's venv (foreground)")
    serve.add_argument("--version", choices=VERSIONS, required=True)
    serve.add_argument("--path", required=True, help="the persist directory to serve")
    serve.add_argument("--port", type=int, default=8000)
    load = sub.add_parser("load", help="load the lab dataset with that version's own client")
    load.add_argument("--version", choices=VERSIONS, required=True)
    load.add_argument("--url", required=True)
    load.add_argument("--scale", type=float, default=1.0)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = _parse_args(argv)
    if args.command == "venv":
        wanted = VERSIONS if args.version == "all" else (args.version,)
        # one build per version, side by side: each is mostly pip waiting on downloads and unpacking
        with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
            for version, built in zip(wanted, pool.map(ensure_venv, wanted)):
                print(f"lab.legacy: Chroma {version}: {built}", flush=True)
        return 0
    ensure_venv(args.version)
    if args.command == "serve":
        chroma = str(bin_dir(args.version) / "chroma")
        print(f"lab.legacy: serving {args.path} with Chroma {args.version} at http://127.0.0.1:{args.port} "
              f"(migrate with source: {{url: http://127.0.0.1:{args.port}}})", flush=True)
        os.environ["ANONYMIZED_TELEMETRY"] = "False"
        os.execv(chroma, [chroma, "run", "--path", args.path, "--host", "127.0.0.1", "--port", str(args.port)])
    print(load_dataset(args.version, args.url, scale=args.scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
