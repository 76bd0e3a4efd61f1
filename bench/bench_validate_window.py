#!/usr/bin/env python3
"""The validate step under the freeze, with and without the pre-copy's pre-validation (printed, never asserted).

    .venv/bin/python bench/bench_validate_window.py [--sizes 10000] [--changed 0.01] [--repeat 2]

For each size: throw-away `chroma run` servers (own temp dir, free 127.0.0.1 ports, stopped by PID),
one source collection of N records x 768 (cosine, documents, metadata; bench_window's dataset). The real
engine pre-copies it into staging; then --changed of the records change (updates, deletes, new ids), the
pre-validation runs (before the freeze), the delta is applied and promoted, and the source snapshot is taken.
Then, on that same target, alternately:
  without pre-copy: chroma_validate phase=full   (every check on every record: today's step under the freeze)
  with pre-copy:    chroma_validate phase=freeze (record checks on what changed + totals)
both reading the source from the snapshot, as the role does. Printed: each duration, the ratio, the
pre-validation's duration (before the freeze), the records each part checked and both verdicts.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "module_utils"))
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))

from bench_window import change, load  # noqa: E402
from chroma_runbook.migrate.migration import run_migration  # noqa: E402
from chroma_runbook.migrate.migration_options import MigrationOptions  # noqa: E402
from chroma_runbook.migrate.transform import Transformer  # noqa: E402
from chroma_runbook.snapshot.snapshot import take_snapshot  # noqa: E402
from chroma_runbook.validation.phased import run_freeze_validation, run_prevalidation  # noqa: E402
from chroma_runbook.validation.runner import ValidationOptions, run_validation  # noqa: E402
from lab.chroma_server import start_in  # noqa: E402

RUN_ID = "bench"


def bench(n: int, share: float, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-validate-window-") as tmp:
        root = Path(tmp)
        source, target = start_in(root, "source"), start_in(root, "target")
        try:
            load(source, n)
            ck = root / "ck"
            opts = dict(source={"url": source.url}, target={"url": target.url}, checkpoint_dir=str(ck),
                        run_id=RUN_ID, batch_size=1000, keep_spool=False)
            run_migration(MigrationOptions(**opts, precopy=True).validate())
            changed = change(source, n, share)
            transformer = Transformer.from_options(None, None)
            reports = root / "reports"
            t0 = time.perf_counter()
            pre = run_prevalidation(source.client(), target.client(), transformer,
                                    ValidationOptions(report_dir=str(reports)), RUN_ID, str(ck))
            before = time.perf_counter() - t0
            print(f"[{n}] pre-validation before the freeze: {before:.2f}s, {pre['overall_status']}, "
                  f"{pre['timing']['records_before_freeze']} records checked, "
                  f"{pre['timing']['records_deferred_to_freeze']} left to the freeze ({changed} changed); "
                  f"phases {pre['durations']}")
            run_migration(MigrationOptions(**opts).validate())
            snap = root / "snapshot"
            take_snapshot(source.client(), snap)
            options = dict(report_dir=str(reports), source_snapshot=str(snap))
            full, split = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                a = run_validation(source.client(), target.client(), transformer, ValidationOptions(**options))
                full.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                b = run_freeze_validation(source.client(), target.client(), transformer, ValidationOptions(**options),
                                          RUN_ID, str(ck))
                split.append(time.perf_counter() - t0)
            without, with_ = min(full), min(split)
            print(f"[{n}] under the freeze WITHOUT pre-copy (every check, every record): {without:.2f}s "
                  f"({a['overall_status']}; runs {', '.join(f'{x:.2f}' for x in full)})")
            print(f"[{n}] under the freeze WITH pre-copy (delta {b['timing']['records_under_freeze']} records + totals): "
                  f"{with_:.2f}s ({b['overall_status']}; runs {', '.join(f'{x:.2f}' for x in split)}; "
                  f"phases {b['durations']})")
            print(f"[{n}] RATIO validate under the freeze with / without pre-copy = {with_:.2f} / {without:.2f} = "
                  f"{with_ / without:.2f}")
            return {"records": n, "without_s": without, "with_s": with_, "before_freeze_s": before}
        finally:
            source.stop()
            target.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000])
    parser.add_argument("--changed", type=float, default=0.01, help="share of records changed after the pre-copy")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rows = [bench(n, args.changed, args.repeat) for n in args.sizes]
    print("records  without-precopy  with-precopy  ratio  pre-validation(before freeze)")
    for r in rows:
        print(f"{r['records']:>7}  {r['without_s']:>14.2f}s  {r['with_s']:>11.2f}s  {r['with_s'] / r['without_s']:>5.2f}"
              f"  {r['before_freeze_s']:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
