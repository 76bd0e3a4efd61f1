#!/usr/bin/env python3
"""Snapshot and restore rates on N x DIM (default 40,000 x 768), printed, never asserted.

    .venv/bin/python bench/bench_snapshot.py [--records 40000] [--dim 768] [--page-size 1000]

Starts two throw-away `chroma run` servers on free 127.0.0.1 ports (stopped by PID),
loads random float32 vectors with documents and metadata, then measures: snapshot
(records/s, MB/s, peak RSS of the snapshot process), full verification, restore into
the second server (records/s, peak RSS) and checks the restored counts.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "module_utils"))
sys.path.insert(0, str(REPO))

from lab.chroma_server import start_in  # noqa: E402


def load(url: str, n: int, dim: int) -> float:
    from chroma_runbook.io.connection import connect

    client = connect({"url": url})
    coll = client.create_collection("bench", configuration={"hnsw": {"space": "cosine"}},
                                    metadata={"owner": "bench"}, embedding_function=None)
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    for start in range(0, n, 2000):
        m = min(2000, n - start)
        coll.add(ids=[f"b-{i:07d}" for i in range(start, start + m)],
                 embeddings=rng.normal(size=(m, dim)).astype(np.float32),
                 documents=[f"benchmark document number {i} about chroma snapshots" for i in range(start, start + m)],
                 metadatas=[{"i": i, "lang": "en", "score": float(i % 100) / 100} for i in range(start, start + m)])
    return time.perf_counter() - started


CHILD = """
import json, resource, sys, time
sys.path.insert(0, {mu!r})
from pathlib import Path
from chroma_runbook.io.connection import connect
from chroma_runbook.snapshot.snapshot import take_snapshot
from chroma_runbook.snapshot.restore import restore_snapshot
from chroma_runbook.snapshot.manifest import verify_snapshot
t0 = time.perf_counter()
if {op!r} == "snapshot":
    out = take_snapshot(connect({{"url": {url!r}}}), Path({path!r}), page_size={page}).as_dict()
elif {op!r} == "verify":
    out = verify_snapshot(Path({path!r})).as_dict()
else:
    out = restore_snapshot(connect({{"url": {url!r}}}), Path({path!r}), batch_size={page}).as_dict()
out["seconds"] = time.perf_counter() - t0
out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def child(op: str, url: str, path: Path, page: int) -> dict:
    code = CHILD.format(mu=str(REPO / "module_utils"), op=op, url=url, path=str(path), page=page)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    servers = []
    try:
        servers.append(start_in(work, "a"))
        servers.append(start_in(work, "b"))
        src_url, dst_url = servers[0].url, servers[1].url
        n, dim = args.records, args.dim
        load_s = load(src_url, n, dim)
        raw_mb = n * dim * 4 / 2**20
        print(f"dataset: {n} x {dim} float32 ({raw_mb:.0f} MiB of vectors), loaded in {load_s:.1f}s")
        snap = work / "snapshots" / "s1"
        s = child("snapshot", src_url, snap, args.page_size)
        size_mb = s["total_bytes"] / 2**20
        print(f"snapshot: {s['seconds']:.2f}s  {n / s['seconds']:.0f} records/s  {size_mb / s['seconds']:.1f} MiB/s "
              f"({size_mb:.0f} MiB on disk), peak RSS {s['max_rss_mb']:.0f} MiB")
        v = child("verify", src_url, snap, args.page_size)
        print(f"verify:   {v['seconds']:.2f}s  {v['bytes_checked'] / 2**20 / v['seconds']:.0f} MiB/s "
              f"({v['files_checked']} files, SHA-256)")
        r = child("restore", dst_url, snap, args.page_size)
        print(f"restore:  {r['seconds']:.2f}s  {n / r['seconds']:.0f} records/s (verification included), "
              f"peak RSS {r['max_rss_mb']:.0f} MiB, restored {r['total_records']} records")
        if r["total_records"] != n:
            print(f"MISMATCH: restored {r['total_records']} of {n}")
            return 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
