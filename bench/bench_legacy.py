"""Figures for a migration from a legacy source: the whole ansible-playbook chroma_migrate run from
Chroma 0.4.24 (or 0.5.23), read over /api/v1 in plain HTTP, against the 1.5.9 target's plain add() rate.

    .venv/bin/python bench/bench_legacy.py [--version 0.4.24|0.5.23] [--records 8832]

Builds (or reuses) the legacy venv under .cache/legacy, starts the legacy source and a 1.5.9
target (throw-away dirs, free 127.0.0.1 ports, stopped by PID), loads the lab's legacy dataset
(768-dim) scaled to --records with that version's own client, then on the same target:
  1. plain add(): the records the migration writes, added from memory, batch 1000;
  2. ansible-playbook running chroma_migrate (copy: no routing, no schema), whole wall clock;
  3. plain add() again (the box is shared: the mean of both plain runs is used).
Also the legacy source's read rate (get pages of 1000 with embeddings, one thread).
Ratio = migration rate / plain add rate over the same records. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_migrate import BATCH, describe, migrate, plain_add, scale_for  # noqa: E402
from lab import legacy  # noqa: E402
from lab.chroma_server import free_port, start_in  # noqa: E402


def read_rate(url: str) -> tuple[int, float]:
    """(records, seconds) to page through every collection of the source over its v1 API."""
    from chroma_runbook.io.source import iter_pages, open_source

    reader = open_source({"url": url, "timeout": 300})
    started, total = time.perf_counter(), 0
    for collection in reader.list_collections():
        for page in iter_pages(collection, BATCH):
            total += len(page["ids"])
    return total, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", choices=legacy.VERSIONS, default="0.4.24")
    parser.add_argument("--records", type=int, default=8832)
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (other work on the box skews figures)")
    legacy.ensure_venv(args.version)
    scale = scale_for(args.records)
    with tempfile.TemporaryDirectory(prefix="bench-legacy-") as tmp:
        root = Path(tmp)
        (root / "source").mkdir()
        source = legacy.server(args.version, root / "source", free_port(), root / "source.log").start(timeout=120)
        target = start_in(root, "target")
        try:
            t0 = time.perf_counter()
            print(legacy.load_dataset(args.version, source.url, scale=scale))
            print(f"source: Chroma {args.version} loaded in {time.perf_counter() - t0:.1f}s")
            n, s = read_rate(source.url)
            print(f"read from Chroma {args.version} over /api/v1: {n} records in {s:.1f}s = {n / s:,.0f} rec/s")
            n1, s1 = plain_add(target, scale, "plain1_")
            print(f"plain add #1 on the 1.5.9 target: {n1} records in {s1:.1f}s = {n1 / s1:,.0f} rec/s")
            copy, wall, rss = migrate(root, "legacy", source, target)
            describe(f"chroma_migrate from {args.version}", copy, wall, rss)
            n2, s2 = plain_add(target, scale, "plain2_")
            print(f"plain add #2 on the 1.5.9 target: {n2} records in {s2:.1f}s = {n2 / s2:,.0f} rec/s")
            plain = (n1 + n2) / (s1 + s2)
            rate = copy["imported"] / wall
            print(f"RATIO from {args.version}: whole playbook {rate:,.0f} rec/s / plain add {plain:,.0f} rec/s "
                  f"= {rate / plain:.2f}")
            print(f"load average at the end {os.getloadavg()[0]:.2f}")
        finally:
            source.stop()
            target.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
