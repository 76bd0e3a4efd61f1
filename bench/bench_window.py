"""The write freeze of the migrate step with and without the pre-copy.

    .venv/bin/python bench/bench_window.py [--sizes 10000 40000 100000] [--changed 0.01]

For each size: throw-away `chroma run` servers (own temp dirs, free 127.0.0.1 ports, stopped by
PID): one source holding one collection of N records x 768 (cosine, documents, 3-key metadata)
and two targets. Each figure is ONE ansible-playbook run of chroma_migrate (batch 1000):
  without pre-copy: the whole migration, all of it under the freeze (chroma_precopy: false);
  with pre-copy:    the pre-copy runs while a writer changes --changed of the records (half
                    updates that drop a metadata key and change the vector, a quarter deletes, a
                    quarter new ids); then the delta run, the only part under the freeze.
Printed: freeze without, pre-copy (live, not frozen), freeze with, ratio with/without (goal at
40k: <= 0.3), and whether the delta's target equals the source (counts + verification).
The rest of the window (freeze proof, snapshot, eight checks, cutover) is the same either way
and is not part of these figures: see migrate.yml's summary on the lab. Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "module_utils"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from lab.chroma_server import ChromaServer, start_in  # noqa: E402
from migrate_play import ansible_env, play_command, write_play  # noqa: E402

DIM = 768
BATCH = 1000
NAME = "window_docs"


def load(server: ChromaServer, n: int) -> None:
    rng = np.random.default_rng(14)
    col = server.client().create_collection(NAME, configuration={"hnsw": {"space": "cosine"}},
                                            embedding_function=None)
    for start in range(0, n, BATCH):
        end = min(n, start + BATCH)
        emb = rng.standard_normal((end - start, DIM)).astype(np.float32)
        col.add(ids=[f"doc-{i}" for i in range(start, end)], embeddings=emb,
                documents=[f"document number {i} of the window benchmark" for i in range(start, end)],
                metadatas=[{"i": i, "tag": f"t{i % 7}", "note": "drop me"} for i in range(start, end)])


def change(server: ChromaServer, n: int, share: float) -> int:
    """What the apps write during the pre-copy: ``share`` of n records changed; how many."""
    rng = np.random.default_rng(15)
    col = server.client().get_collection(NAME)
    k = max(4, int(n * share))
    picks = rng.choice(n, size=k * 3 // 4, replace=False)
    updated, deleted = picks[: k // 2], picks[k // 2:]
    for start in range(0, len(updated), 200):
        ids = [f"doc-{i}" for i in updated[start:start + 200]]
        col.update(ids=ids, embeddings=rng.standard_normal((len(ids), DIM)).astype(np.float32),
                   metadatas=[{"note": None, "tag": "changed"}] * len(ids))
    col.delete(ids=[f"doc-{i}" for i in deleted])
    new = k - len(updated) - len(deleted)
    col.add(ids=[f"new-{i}" for i in range(new)], embeddings=rng.standard_normal((new, DIM)).astype(np.float32),
            documents=[f"new document {i}" for i in range(new)], metadatas=[{"i": -i, "tag": "new"} for i in range(new)])
    return k


def migrate(workdir: Path, name: str, run_id: str, source: ChromaServer, target: ChromaServer,
            **extra: Any) -> tuple[dict[str, Any], float]:
    """One ansible-playbook run of chroma_migrate; (its result, wall seconds)."""
    ck = workdir / f"ck-{run_id}"
    args = {"source": {"url": source.url}, "target": {"url": target.url}, "checkpoint_dir": str(ck),
            "batch_size": BATCH, "run_id": run_id, **extra}
    play, out = write_play(workdir, args, name)
    started = time.perf_counter()
    proc = subprocess.run(play_command(play), env=ansible_env(), cwd=str(REPO), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:])
        raise SystemExit(f"migration {name} failed")
    return json.loads(out.read_text()), wall


def progress_of(ck: Path, run_id: str) -> int:
    try:
        return int(json.loads((ck / f"{run_id}.checkpoint.json").read_text()).get("exported_chunks", 0))
    except (OSError, ValueError):
        return 0


def bench(n: int, share: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-window-") as tmp:
        root = Path(tmp)
        source, plain, pre = start_in(root, "source"), start_in(root, "plain"), start_in(root, "pre")
        try:
            t0 = time.perf_counter()
            load(source, n)
            print(f"[{n}] source loaded: {n} x {DIM} in {time.perf_counter() - t0:.1f}s")
            result, without = migrate(root, "without", "without", source, plain)
            print(f"[{n}] without pre-copy: freeze {without:.1f}s (migrate step: {result['imported']} records)")

            changed: dict[str, Any] = {}

            def writer() -> None:  # starts once the pre-copy has read a tenth of the source
                while progress_of(root / "ck-with", "with") < n // 10 and not changed.get("stop"):
                    time.sleep(0.05)
                changed["records"] = change(source, n, share)
                changed["during_precopy"] = not changed.get("stop")

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            pre_result, live = migrate(root, "precopy", "with", source, pre, precopy=True)
            changed["stop"] = True
            thread.join()
            print(f"[{n}] pre-copy while live: {live:.1f}s, {pre_result['precopy']['added']} staged; writer changed "
                  f"{changed['records']} records ({'during' if changed['during_precopy'] else 'AFTER'} the pre-copy)")
            delta_result, with_ = migrate(root, "delta", "with", source, pre)
            d = delta_result["phases"]["delta"]
            counts = {c.name: c.count() for c in source.client().list_collections()}
            equal = (delta_result["verification"]["passed"]
                     and {c.name: c.count() for c in pre.client().list_collections()} == counts)
            print(f"[{n}] with pre-copy: freeze {with_:.1f}s (delta read {d['read']}, added {d['added']}, "
                  f"replaced {d['replaced']}, deleted {d['deleted']}; module {delta_result['elapsed_s']:.1f}s of which delta pass "
                  f"{d['duration_s']:.1f}s, verify {delta_result['phases']['verify']['duration_s']:.1f}s; "
                  f"target equals source: {equal})")
            ratio = with_ / without
            print(f"[{n}] RATIO freeze with / without pre-copy = {with_:.1f} / {without:.1f} = {ratio:.2f}"
                  + (" (goal <= 0.3)" if n == 40000 else ""))
            return {"records": n, "without_s": without, "precopy_s": live, "with_s": with_, "ratio": ratio}
        finally:
            for server in (source, plain, pre):
                server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000, 40000, 100000])
    parser.add_argument("--changed", type=float, default=0.01, help="share of records the writer changes")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (other work on the box skews figures)")
    rows = [bench(n, args.changed) for n in args.sizes]
    print("\nrecords  freeze without  pre-copy (live)  freeze with  ratio")
    for r in rows:
        print(f"{r['records']:>7}  {r['without_s']:>13.1f}s  {r['precopy_s']:>14.1f}s  {r['with_s']:>10.1f}s  "
              f"{r['ratio']:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
