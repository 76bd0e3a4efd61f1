"""Figures for chroma_migrate: the whole ansible-playbook run against the target's plain add() rate,
and the module's peak memory at two sizes.

    .venv/bin/python bench/bench_migrate.py [--records 40000] [--rss-sizes 10000 100000] [--skip-rss]

Starts throw-away `chroma run` servers (own temp dirs, free 127.0.0.1 ports, stopped by PID),
loads the lab's legacy dataset (768-dim) scaled to --records into the source, then on the same
pair of servers and the same records:
  1. plain add(): the valid records added to fresh target collections from memory, batch 1000,
     one client thread (then the collections are dropped);
  2. ansible-playbook running chroma_migrate (copy: no routing, no schema) - wall clock of
     the whole playbook, including start-up, the validation pass (which the import overlaps,
     staging=true, the default), import, promotion and verification;
  3. plain add() again (the box is shared: both plain runs are printed, the mean is used);
  4. ansible-playbook with the lab routing + 12-field profile (4 cosine targets);
  5. plain add() of the records as the profile writes them (15-field metadata, 4 targets):
     the lab run's baseline (more metadata per record costs the target more).
Ratio = migration rate / plain add rate over the same records (>= 0.85 wanted); each migration
is compared with the mean of the plain runs just before and after it.
Peak RSS of the module process (its own getrusage and a psutil sampler) at each --rss-sizes.
--one-collection: instead, one collection of --records x 768 (cosine): plain add() #1, the
playbook without pre-copy (one chroma_migrate task, the window of chroma_precopy=false), plain
add() #2, the playbook with pre-copy (chroma_migrate precopy=true, then the delta: the two tasks
migrate.yml runs), plain add() #3; each migration against the mean of the plain runs just
before and after it. With pre-copy the copy rate is the records on the target over the wall
time of both tasks (the pre-copy is the bulk copy; the delta re-reads and sends the rest).
Prints figures; asserts nothing.
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
from typing import Any, Optional

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "module_utils"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from lab import dataset  # noqa: E402
from lab.chroma_server import ChromaServer, start_in  # noqa: E402
from migrate_play import ansible_env, play_command, write_play  # noqa: E402
from tests.lab_vars import group_var  # noqa: E402

BATCH = 1000


def scale_for(records: int) -> float:
    return records / sum(s.count for s in dataset.SPECS)


def plain_add(server: ChromaServer, scale: float, prefix: str) -> tuple[int, float]:
    """Add the records the migration writes (zero vectors excluded) from memory; (records, seconds)."""
    client = server.client()
    total, seconds = 0, 0.0
    for data in dataset.generate("legacy", scale):
        zero = set(data.zero_vector_ids)
        keep = np.array([rid not in zero for rid in data.ids])
        idx = np.flatnonzero(keep)
        col = client.create_collection(prefix + data.spec.name, configuration=data.spec.configuration(),
                                       metadata=data.spec.metadata(), embedding_function=None)
        ids = [data.ids[i] for i in idx]
        docs = [data.documents[i] for i in idx]
        metas = [data.metadatas[i] for i in idx]
        emb = np.ascontiguousarray(data.embeddings[idx])
        started = time.perf_counter()
        for start in range(0, len(ids), BATCH):
            end = start + BATCH
            col.add(ids=ids[start:end], embeddings=emb[start:end], documents=docs[start:end],
                    metadatas=metas[start:end])
        seconds += time.perf_counter() - started
        total += len(ids)
    for spec in dataset.SPECS:
        client.delete_collection(prefix + spec.name)
    return total, seconds


def plain_add_transformed(server: ChromaServer, scale: float, prefix: str) -> tuple[int, float]:
    """Like plain_add, but the records as the lab profile writes them (4 cosine targets,
    15-field metadata): the fair baseline for a migration that reshapes metadata."""
    from chroma_runbook.io.records import Record
    from chroma_runbook.migrate.transform import Transformer

    transformer = Transformer.from_options(group_var("routing.yml", "chroma_routing"),
                                           group_var("schema_profile.yml", "chroma_schema_profile"))
    rows: dict[str, list[Any]] = {}
    for data in dataset.generate("legacy", scale):
        for i, rid in enumerate(data.ids):
            rec = transformer.transform(Record(id=rid, embedding=data.embeddings[i], document=data.documents[i],
                                               metadata=dict(data.metadatas[i]), source_collection=data.spec.name),
                                        data.spec.space)
            if not rec.issues:
                rows.setdefault(rec.target_collection, []).append(rec)
    client = server.client()
    total, seconds = 0, 0.0
    for target, recs in rows.items():
        col = client.create_collection(prefix + target, configuration=transformer.collection_configuration(target, None),
                                       metadata=transformer.collection_metadata(target, None), embedding_function=None)
        emb = np.stack([r.embedding for r in recs])
        started = time.perf_counter()
        for start in range(0, len(recs), BATCH):
            chunk = recs[start:start + BATCH]
            col.add(ids=[r.id for r in chunk], embeddings=emb[start:start + BATCH],
                    documents=[r.document for r in chunk], metadatas=[r.metadata for r in chunk])
        seconds += time.perf_counter() - started
        total += len(recs)
        client.delete_collection(prefix + target)
    return total, seconds


class RssSampler(threading.Thread):
    """Samples the RSS of the module process (found by the lock file's PID and its command line)."""

    def __init__(self, checkpoint_dir: Path) -> None:
        super().__init__(daemon=True)
        self.lock = checkpoint_dir / "migrate.lock"
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        proc: Optional[psutil.Process] = None
        while not self.stopped.is_set():
            try:
                if proc is None:
                    holder = json.loads(self.lock.read_text() or "{}")
                    if holder.get("pid"):
                        candidate = psutil.Process(holder["pid"])
                        if any("chroma_migrate" in part for part in candidate.cmdline()):
                            proc = candidate
                if proc is not None:
                    self.peak = max(self.peak, proc.memory_info().rss)
            except (OSError, ValueError, psutil.Error):
                pass
            time.sleep(0.1)


def migrate(workdir: Path, name: str, source: ChromaServer, target: ChromaServer, **extra: Any) -> tuple[dict[str, Any], float, int]:
    """Run the playbook; (module result, wall seconds, sampled peak RSS bytes)."""
    ck = workdir / f"ck-{name}"
    args = {"source": {"url": source.url}, "target": {"url": target.url}, "checkpoint_dir": str(ck),
            "batch_size": BATCH, "run_id": name, **extra}
    play, _ = write_play(workdir, args, name, save_result=False)
    sampler = RssSampler(ck)
    sampler.start()
    started = time.perf_counter()
    proc = subprocess.run(play_command(play), env=ansible_env(), cwd=str(REPO), capture_output=True, text=True)
    wall = time.perf_counter() - started
    sampler.stopped.set()
    sampler.join()
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:])
        raise SystemExit(f"migration {name} failed")
    return json.loads((ck / f"{name}.checkpoint.json").read_text()).get("result") or {}, wall, sampler.peak


def describe(label: str, result: dict[str, Any], wall: float, rss: int) -> None:
    ph = result["phases"]
    print(f"  {label}: {result['imported']} records, playbook wall {wall:.1f}s "
          f"({result['imported'] / wall:,.0f} rec/s); module elapsed {result['elapsed_s']:.1f}s; "
          f"validation pass {ph['export'].get('pass_duration_s', 0):.1f}s, import {ph['import']['duration_s']:.1f}s "
          f"({ph['import']['chunks_per_s']:,.0f} rec/s), verify {ph['verify']['duration_s']:.1f}s; "
          f"peak RSS {result['peak_rss_mb']:.0f} MiB (sampled {rss / 2**20:.0f} MiB)")


def bench_ratio(records: int, writers: int) -> None:
    scale = scale_for(records)
    with tempfile.TemporaryDirectory(prefix="bench-migrate-") as tmp:
        root = Path(tmp)
        source, target = start_in(root, "source"), start_in(root, "target")
        try:
            t0 = time.perf_counter()
            dataset.load(source.url, "legacy", scale, client=source.client())
            print(f"source loaded: {records} x 768 in {time.perf_counter() - t0:.1f}s")
            n1, s1 = plain_add(target, scale, "plain1_")
            print(f"plain add #1: {n1} records in {s1:.1f}s = {n1 / s1:,.0f} rec/s")
            copy, wall, rss = migrate(root, "copy", source, target, writers=writers)
            describe("chroma_migrate copy", copy, wall, rss)
            n2, s2 = plain_add(target, scale, "plain2_")
            print(f"plain add #2: {n2} records in {s2:.1f}s = {n2 / s2:,.0f} rec/s")
            plain_rate = (n1 + n2) / (s1 + s2)
            print(f"RATIO copy: migration {copy['imported'] / wall:,.0f} rec/s / plain {plain_rate:,.0f} rec/s "
                  f"= {copy['imported'] / wall / plain_rate:.2f} (wanted >= 0.85)")
            for name in [c.name for c in target.client().list_collections()]:
                target.client().delete_collection(name)
            lab, wall, rss = migrate(root, "lab", source, target, writers=writers,
                                     routing=group_var("routing.yml", "chroma_routing"),
                                     schema=group_var("schema_profile.yml", "chroma_schema_profile"))
            describe("chroma_migrate lab profile", lab, wall, rss)
            n3, s3 = plain_add_transformed(target, scale, "plain3_")
            print(f"plain add #3 (records as the profile writes them): {n3} records in {s3:.1f}s = {n3 / s3:,.0f} rec/s")
            print(f"RATIO lab profile: migration {lab['imported'] / wall:,.0f} rec/s / plain #3 "
                  f"{n3 / s3:,.0f} rec/s = {lab['imported'] / wall / (n3 / s3):.2f}")
            print(f"load average at the end {os.getloadavg()[0]:.2f}")
        finally:
            source.stop()
            target.stop()


def load_one(server: ChromaServer, records: int) -> tuple[list[str], np.ndarray, list[str], list[dict[str, Any]]]:
    """One cosine collection ``one`` of ``records`` x 768 on ``server``; its rows (for the plain add)."""
    rng = np.random.default_rng(40)
    ids = [f"one-{i}" for i in range(records)]
    emb = rng.standard_normal((records, 768)).astype(np.float32)
    docs = [f"document {i} of the single-collection benchmark" for i in range(records)]
    metas: list[dict[str, Any]] = [{"i": i, "tag": f"t{i % 7}"} for i in range(records)]
    col = server.client().create_collection("one", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    for start in range(0, records, BATCH):
        col.add(ids=ids[start:start + BATCH], embeddings=emb[start:start + BATCH], documents=docs[start:start + BATCH],
                metadatas=metas[start:start + BATCH])
    return ids, emb, docs, metas


def plain_add_one(server: ChromaServer, rows: tuple[list[str], np.ndarray, list[str], list[dict[str, Any]]],
                  name: str) -> float:
    """Seconds to add ``rows`` into a fresh cosine collection (batch 1000, one thread); dropped after."""
    ids, emb, docs, metas = rows
    client = server.client()
    col = client.create_collection(name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    started = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        col.add(ids=ids[start:start + BATCH], embeddings=emb[start:start + BATCH], documents=docs[start:start + BATCH],
                metadatas=metas[start:start + BATCH])
    seconds = time.perf_counter() - started
    client.delete_collection(name)
    return seconds


def bench_one_collection(records: int, writers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-migrate-one-") as tmp:
        root = Path(tmp)
        source, target = start_in(root, "source"), start_in(root, "target")
        try:
            rows = load_one(source, records)
            s1 = plain_add_one(target, rows, "plain1")
            print(f"plain add #1: {records} records in {s1:.1f}s = {records / s1:,.0f} rec/s")
            plain, wall, _ = migrate(root, "plain", source, target, writers=writers)
            print(f"  playbook without pre-copy: {plain['imported']} records in {wall:.1f}s "
                  f"({plain['imported'] / wall:,.0f} rec/s)")
            target.client().delete_collection("one")
            s2 = plain_add_one(target, rows, "plain2")
            print(f"plain add #2: {records} records in {s2:.1f}s = {records / s2:,.0f} rec/s")
            rate = 2 * records / (s1 + s2)
            print(f"RATIO one collection, without pre-copy: {plain['imported'] / wall / rate:.2f} (wanted >= 0.85)")
            for name in [c.name for c in target.client().list_collections()]:
                target.client().delete_collection(name)
            print(f"load average now {os.getloadavg()[0]:.2f}")
            pre, wall_pre, _ = migrate(root, "pre", source, target, writers=writers, precopy=True)
            delta, wall_delta, _ = migrate(root, "pre", source, target, writers=writers)
            target.client().delete_collection("one")
            s3 = plain_add_one(target, rows, "plain3")
            print(f"plain add #3: {records} records in {s3:.1f}s = {records / s3:,.0f} rec/s")
            rate_pre = 2 * records / (s2 + s3)
            whole = wall_pre + wall_delta
            # copy rate with pre-copy: the records on the target / (pre-copy task + delta task), the two
            # chroma_migrate tasks migrate.yml runs (the pre-copy does the bulk copy, live; the delta the rest)
            print(f"  playbook with pre-copy: pre-copy {wall_pre:.1f}s + delta {wall_delta:.1f}s = {whole:.1f}s "
                  f"({delta['imported'] / whole:,.0f} rec/s); pre-copy alone {records / wall_pre:,.0f} rec/s")
            print(f"RATIO one collection, with pre-copy (records / both tasks' wall, against plain #2 and #3): "
                  f"{delta['imported'] / whole / rate_pre:.2f}; pre-copy task alone: {records / wall_pre / rate_pre:.2f} "
                  f"(wanted >= 0.85)")
            print(f"load average at the end {os.getloadavg()[0]:.2f}")
        finally:
            source.stop()
            target.stop()


def bench_rss(records: int, writers: int) -> None:
    scale = scale_for(records)
    with tempfile.TemporaryDirectory(prefix="bench-migrate-rss-") as tmp:
        root = Path(tmp)
        source, target = start_in(root, "source"), start_in(root, "target")
        try:
            t0 = time.perf_counter()
            dataset.load(source.url, "legacy", scale, client=source.client())
            print(f"source loaded: {records} x 768 in {time.perf_counter() - t0:.1f}s")
            result, wall, rss = migrate(root, f"rss{records}", source, target, writers=writers)
            describe(f"RSS at {records}", result, wall, rss)
        finally:
            source.stop()
            target.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=40000)
    parser.add_argument("--rss-sizes", type=int, nargs="*", default=[10000, 100000])
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--skip-ratio", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--one-collection", action="store_true",
                        help="one collection of --records x 768, with and without the pre-copy (nothing else)")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (other work on the box skews figures)")
    if args.one_collection:
        bench_one_collection(args.records, args.writers)
        return 0
    if not args.skip_ratio:
        bench_ratio(args.records, args.writers)
    if not args.skip_rss:
        for size in args.rss_sizes:
            bench_rss(size, args.writers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
