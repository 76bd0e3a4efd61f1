"""Whole-source reads by page size: the snapshot and the fingerprint (the gate's drift check) of the lab.

    .venv/bin/python bench/bench_read_pages.py [--dir /tmp/read-pages-lab] [--port-base 24200]
                                               [--sizes 1000,250] [--rounds 4]

Starts a fresh lab (its source: 8,832 records x 768 in six collections of 800 to 3,000), then for
each round and each page size (alternating, so drift in the box's load hits every size alike) takes
a logical snapshot with its fingerprint (what chroma_snapshot does under the freeze) and a
fingerprint alone (what the drift check does), and prints each time, then the median per page size.
A page size is the most records per request: a collection it would read in fewer than four pages is
read in smaller ones (io/source.overlap_page_size), so 1000 reads the lab in pages of 250-750 and
250 in pages of 250. The lab is torn down afterwards. Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_lab_window import labctl  # noqa: E402
from module_utils.chroma_runbook.io.fingerprint import take_fingerprint  # noqa: E402
from module_utils.chroma_runbook.io.source import open_source  # noqa: E402
from module_utils.chroma_runbook.snapshot.snapshot import take_snapshot  # noqa: E402

def timed_snapshot(url: str, page_size: int) -> float:
    scratch = Path(tempfile.mkdtemp(prefix="bench-read-pages-"))
    try:
        started = time.perf_counter()
        take_snapshot(open_source({"url": url}), scratch / "snapshot", None, page_size, url, fingerprint=True)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def timed_fingerprint(url: str, page_size: int) -> float:
    started = time.perf_counter()
    take_fingerprint(open_source({"url": url}), page_size=page_size)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/read-pages-lab")
    parser.add_argument("--port-base", type=int, default=24200)
    parser.add_argument("--sizes", default="1000,250", help="page sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (other work on the box inflates figures)")
    labctl("down", args.dir, args.port_base, "--purge")
    labctl("up", args.dir, args.port_base)
    url = json.loads((Path(args.dir) / "lab.json").read_text())["urls"]["source"]
    times: dict[int, dict[str, list[float]]] = {s: {"snapshot": [], "fingerprint": []} for s in sizes}
    try:
        for round_no in range(1, args.rounds + 1):
            for size in sizes:
                snap, finger = timed_snapshot(url, size), timed_fingerprint(url, size)
                times[size]["snapshot"].append(snap)
                times[size]["fingerprint"].append(finger)
                print(f"round {round_no}: page {size:>5}: snapshot+fingerprint {snap:.2f} s, fingerprint {finger:.2f} s")
        for size in sizes:
            print(f"median, page {size:>5}: snapshot+fingerprint {statistics.median(times[size]['snapshot']):.2f} s, "
                  f"fingerprint {statistics.median(times[size]['fingerprint']):.2f} s")
    finally:
        labctl("down", args.dir, args.port_base, "--purge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
