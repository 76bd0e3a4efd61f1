"""Figures for the lab's dataset: generation speed and memory, and load speed into a real Chroma.

    .venv/bin/python bench/lab_dataset.py [--scales 1 4] [--load]

``--load`` starts a throw-away `chroma run` on a free 127.0.0.1 port in a temp
directory, loads scale 1 into it and stops it by PID.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import dataset, embedder  # noqa: E402
from lab.chroma_server import start_in  # noqa: E402


def bench_generate(scale: float) -> None:
    started = time.perf_counter()
    data = dataset.generate(scale=scale)
    seconds = time.perf_counter() - started
    records = sum(len(d) for d in data)
    del data
    tracemalloc.start()  # a second pass for memory: tracing slows Python down
    dataset.generate(scale=scale)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"generate scale {scale:g}: {records} records in {seconds:.2f}s "
          f"({records / seconds:,.0f} records/s), peak traced memory {peak / 2**20:.0f} MiB")


def bench_embed(n: int = 20000) -> None:
    texts = [f"query number {i} about personality traits and a funny joke" for i in range(n)]
    started = time.perf_counter()
    embedder.embed_many(texts)
    seconds = time.perf_counter() - started
    print(f"embed_many: {n} texts in {seconds:.2f}s ({n / seconds:,.0f} texts/s)")


def bench_load() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_in(Path(tmp), "data")
        try:
            report = dataset.load(server.url)
            print(f"load scale 1 into a fresh chroma run: {report.summary()} "
                  f"({sum(report.loaded.values()) / report.seconds:,.0f} records/s)")
            again = dataset.load(server.url)
            print(f"second load (already there): {again.seconds:.2f}s, skipped {len(again.skipped)} collections")
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--load", action="store_true", help="also load scale 1 into a throw-away chroma run")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    bench_embed()
    for scale in args.scales:
        bench_generate(scale)
    if args.load:
        bench_load()
    return 0


if __name__ == "__main__":
    sys.exit(main())
