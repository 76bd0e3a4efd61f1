#!/usr/bin/env python3
"""Validation speed on the lab's legacy dataset (8,832 x 768 at scale 1), printed, never asserted.

    .venv/bin/python bench/bench_validate.py [--scale 1] [--repeat 3] [--workers 4]

Starts two throw-away `chroma run` servers on free 127.0.0.1 ports (stopped by PID),
loads the legacy dataset, migrates it with the real engine (routing + 12-field profile
from group_vars/all), then times chroma_validate's engine and prints the phases.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "module_utils"))
sys.path.insert(0, str(REPO))

from chroma_runbook.io.connection import connect  # noqa: E402
from chroma_runbook.migrate.migration import run_migration  # noqa: E402
from chroma_runbook.migrate.migration_options import MigrationOptions  # noqa: E402
from chroma_runbook.snapshot.snapshot import take_snapshot  # noqa: E402
from chroma_runbook.migrate.transform import Transformer  # noqa: E402
from chroma_runbook.validation.runner import ValidationOptions, run_validation  # noqa: E402
from lab import dataset  # noqa: E402
from lab.chroma_server import start_in  # noqa: E402
from tests.lab_vars import group_var  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    servers = []
    try:
        servers.append(start_in(work, "source"))
        servers.append(start_in(work, "target"))
        src_url, dst_url = servers[0].url, servers[1].url
        dataset.load(src_url, "legacy", args.scale)
        routing, schema = group_var("routing.yml", "chroma_routing"), group_var("schema_profile.yml", "chroma_schema_profile")
        rejects = work / "rejects.jsonl"
        t0 = time.perf_counter()
        run_migration(MigrationOptions(source={"url": src_url}, target={"url": dst_url}, checkpoint_dir=str(work / "ck"),
                                       routing=routing, schema=schema, rejects_path=str(rejects)).validate())
        print(f"migrated in {time.perf_counter() - t0:.1f}s")
        transformer = Transformer.from_options(routing, schema)
        snap = work / "snapshot"
        take_snapshot(connect({"url": src_url}), snap)
        for i in range(args.repeat * 2):
            from_snapshot = i % 2 == 1
            options = ValidationOptions(report_dir=str(work / "reports"), rejects_path=str(rejects), workers=args.workers,
                                        source_snapshot=str(snap) if from_snapshot else None)
            t0, c0 = time.perf_counter(), time.process_time()
            report = run_validation(connect({"url": src_url}), connect({"url": dst_url}), transformer, options)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            load = os.getloadavg()[0]
            print(f"run {i // 2 + 1} (source from {'snapshot' if from_snapshot else 'server'}): {seconds:.2f}s wall, {cpu:.2f}s CPU in this process (load average {load:.1f})  {report['source_total']} source + {report['target_total']} target "
                  f"records x 768 -> {report['overall_status']}, divergence {report['semantic_divergence_percentage']}%")
            print("   phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in report["durations"].items()))
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
