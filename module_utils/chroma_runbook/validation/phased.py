"""Validation in two parts when the migration pre-copies: before the freeze, then under it.

Before the freeze (``phase=precopy``), right after the pre-copy, while the apps still write:
the source is read live and pushed through the Transformer; a record whose fingerprint
(precopy.record_fingerprint of the transformed record) equals the one the pre-copy kept
for what it staged is *stable*: staging must hold exactly that, so the record checks
(embeddings, metadata, field types) run on the stable records of the staging
collections against the source. A record the source changed since the pre-copy read it,
or that the live read missed, is never a failure: it is left to the freeze. The stable
records and their fingerprints go to ``<report_dir>/prevalidation.json``.

Under the freeze (``phase=freeze``), after the delta: the frozen source (snapshot or
server) is transformed again. A record is skipped only when its fingerprint now equals
the one checked before the freeze *and* the delta did not send it (the ids the delta
sent are in ``<checkpoint_dir>/<run_id>.delta_ids.json``); every other record (changed,
added, deferred, missed, sent by the delta) gets the record checks. The totals (counts,
collection distribution, duplicates, citation references over every record's
metadata, semantic search on a sample) run over the whole collections, read without
their embeddings. The report merges both parts and says, per check, which part ran when.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..io.clock import utc_stamp
from ..io.fsutil import make_private_dir, write_atomic
from ..io.source import INCLUDE_ALL, read_page, select_collections
from ..migrate.precopy import FingerprintStore, delta_ids_path, fingerprint_path, load_delta_ids
from ..migrate.transform import Transformer
from ..migrate.transform_memo import memo_transformer, remove_memo, transform_memo_path
from ..run.names import staging_name
from . import (check_citations, check_counts, check_distribution, check_duplicates, check_embeddings,
               check_field_types, check_metadata, check_semantic, registry)
from .context import CheckResult, Context
from .expectation import Expectation, build_expectation_streaming
from .runner import (BEFORE_FREEZE, UNDER_FREEZE, ValidationOptions, _target_names, assemble_report, finish_report,
                     run_validation)
from .sides import CollectionData, ParallelReader, assemble, finish_side, list_names, read_snapshot_side, start_side
from .thresholds import FAILED, PASSED, ROLLBACK_REASONS, SKIPPED, merge_thresholds, worst

PREVALIDATION_FILE = "prevalidation.json"
# record by record: sound on the stable records before the freeze, on the rest under it
RECORD_CHECKS = (check_embeddings.NAME, check_metadata.NAME, check_field_types.NAME)
# whole collections (or a sample of their index): only the frozen state means anything
TOTAL_CHECKS = (check_counts.NAME, check_distribution.NAME, check_duplicates.NAME, check_citations.NAME,
                check_semantic.NAME)
TOTALS_INCLUDE = ("documents", "metadatas")
_TITLES = {m.NAME: m.TITLE for m in (check_counts, check_embeddings, check_metadata, check_semantic,
                                     check_distribution, check_duplicates, check_field_types, check_citations)}
GET_CHUNK = 500


class PrevalidationMissing(ValueError):
    """The pre-copy's fingerprints are not there."""


def prevalidation_path(report_dir: str) -> str:
    return str(Path(report_dir) / PREVALIDATION_FILE)


# --- reading ---------------------------------------------------------------------------------
def subset(data: CollectionData, rows: list[int], name: Optional[str] = None) -> CollectionData:
    """The given rows of ``data`` (vectors too when it has them)."""
    index = np.asarray(rows, dtype=np.int64)
    vectors = data.vectors[index] if data.vectors.size and rows else np.zeros((0, 0), dtype=np.float32)
    return CollectionData(name or data.name, data.space, [data.ids[r] for r in rows], vectors,
                          [data.documents[r] for r in rows], [data.metadatas[r] for r in rows], data.handle)


def read_live(pool: ThreadPoolExecutor, collection: Any, page_size: int) -> Callable[[], CollectionData]:
    """Start reading a collection that is being written to: its pages by offset, in parallel, as far
    as its count said plus one page. Offsets shift under live writes, so a record may be read twice
    (its last copy is kept) or missed (absent: the freeze checks it); nothing here is a failure."""
    total = int(collection.count())
    futures = [pool.submit(read_page, collection, offset, page_size)
               for offset in range(0, total + page_size, page_size)]

    def result() -> CollectionData:
        data = assemble(collection, [f.result() for f in futures])
        last = {rid: row for row, rid in enumerate(data.ids)}
        return data if len(last) == data.count else subset(data, sorted(last.values()))

    return result


def read_ids(collection: Any, name: str, ids: list[str]) -> CollectionData:
    """Whole records (embeddings too) of the given ids only."""
    pages = [collection.get(ids=ids[i:i + GET_CHUNK], include=list(INCLUDE_ALL)) for i in range(0, len(ids), GET_CHUNK)]
    data = assemble(collection, pages)
    return CollectionData(name, data.space, data.ids, data.vectors, data.documents, data.metadatas, collection)


def restrict(exp: Expectation, keep: dict[str, set[str]]) -> Expectation:
    """The expectation of only the kept (target, id) records (everything else as it is)."""
    return Expectation(targets={t: {i: e for i, e in recs.items() if i in keep.get(t, ())}
                                for t, recs in exp.targets.items()},
                       rejected=exp.rejected, placed=exp.placed, source_total=exp.source_total,
                       issue_counts=exp.issue_counts, source_targets_of=exp.source_targets_of)


def _run(names: tuple[str, ...], ctx: Context) -> dict[str, CheckResult]:
    return {n: registry.run_check(n, registry.CHECKS[n], ctx) for n in names}


def _context(options: ValidationOptions, thresholds: dict[str, float], source: dict[str, CollectionData],
             target: dict[str, CollectionData], exp: Expectation, transformer: Transformer,
             rejects: Optional[dict[str, list[str]]], queries: list[dict[str, Any]]) -> Context:
    return Context(source, target, exp, transformer, thresholds, rejects, options.k, options.sample_size,
                   options.seed, options.max_listed_ids, queries)


# --- before the freeze -----------------------------------------------------------------------
def run_prevalidation(source_client: Any, target_client: Any, transformer: Transformer, options: ValidationOptions,
                      run_id: str, checkpoint_dir: str, write: bool = True) -> dict[str, Any]:
    """The record checks on the pre-copy's stable records (see the module's docstring)."""
    started, started_at = time.monotonic(), utc_stamp()
    options.check()
    thresholds = merge_thresholds(options.thresholds)
    store_file = fingerprint_path(checkpoint_dir, run_id)
    if not os.path.isfile(store_file):
        raise PrevalidationMissing(f"no pre-copy fingerprints for run {run_id} ({store_file}): the pre-copy has not run")
    store = FingerprintStore(store_file)
    durations: dict[str, float] = {}
    clock = time.monotonic()
    try:
        known = store.load()
        source = _read_source_live(source_client, options)
        clock = _lap(durations, "read_source_live", clock)
        digests: dict[tuple[str, str], bytes] = {}
        full, _ = _expectation(transformer, source, digests, checkpoint_dir, run_id)
        stable = {(t, i): d for (t, i), d in digests.items() if known.get(t, {}).get(i) == d}
        clock = _lap(durations, "transform", clock)
        target = _read_staging(target_client, run_id, sorted(known), options)
        clock = _lap(durations, "read_staging", clock)
        keep: dict[str, set[str]] = {}
        for t, i in stable:
            if t in target and i in target[t].row:
                keep.setdefault(t, set()).add(i)
        checked = {t: subset(c, sorted(c.row[i] for i in keep.get(t, ()))) for t, c in target.items()}
        exp = restrict(full, keep)
        ctx = _context(options, thresholds, source, checked, exp, transformer, None, [])
        results = _run(RECORD_CHECKS, ctx)
        clock = _lap(durations, "record_checks", clock)
        n_checked = sum(len(v) for v in keep.values())
        staged = sum(len(v) for v in known.values())
        deferred = staged - n_checked
        failed = set().union(*(r.failed_ids for r in results.values()))
        for result in results.values():
            result.ran.append({"when": BEFORE_FREEZE, "part": "pre-copy", "records": n_checked})
        status = worst(*(r.status for r in results.values()))
        status = PASSED if status == SKIPPED else status
        if status == FAILED and write:  # the next pass (pre-copy again, or the delta) sends them again
            for t in sorted({t for t, _ in failed}):
                store.mark_pending(t, sorted(i for tt, i in failed if tt == t))
    finally:
        store.close()
    duration = round(time.monotonic() - started, 3)
    report = _pre_report(options, results, status, n_checked, deferred, staged, duration, started_at, thresholds)
    report["durations"] = durations
    report["record_pass_rate"] = round(100.0 - 100.0 * len(failed) / n_checked, 4) if n_checked else 100.0
    state = {"run_id": run_id, "checked_at": started_at, "duration_s": duration, "overall_status": status,
             "records_checked": n_checked, "records_deferred": deferred,
             "checked": {t: {i: stable[(t, i)].hex() for i in sorted(ids)} for t, ids in sorted(keep.items())},
             "failed": sorted([t, i] for t, i in failed),
             "checks": [r.as_dict() for r in results.values()]}
    if write:
        make_private_dir(Path(options.report_dir))
        write_atomic(Path(prevalidation_path(options.report_dir)), json.dumps(state, sort_keys=True))
    return finish_report(report, options, write)


def _read_source_live(client: Any, options: ValidationOptions) -> dict[str, CollectionData]:
    collections = select_collections(client, options.collections, "source")
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        pending = {c.name: read_live(pool, c, options.page_size) for c in collections}
        return {name: wait() for name, wait in pending.items()}


def _read_staging(client: Any, run_id: str, targets: list[str], options: ValidationOptions) -> dict[str, CollectionData]:
    """The run's staging collections, under their target names (nothing else writes to them now)."""
    existing = {c.name: c for c in client.list_collections()}
    reader = ParallelReader(options.workers)
    try:
        pending = {t: reader.submit(existing[staging_name(run_id, t)], options.page_size)
                   for t in targets if staging_name(run_id, t) in existing}
        out = finish_side(pending)
    finally:
        reader.close()
    return {t: CollectionData(t, c.space, c.ids, c.vectors, c.documents, c.metadatas, c.handle) for t, c in out.items()}


def _pre_report(options: ValidationOptions, results: dict[str, CheckResult], status: str, n_checked: int,
                deferred: int, staged: int, duration: float, started_at: str,
                thresholds: dict[str, float]) -> dict[str, Any]:
    checks = [r.as_dict() for r in results.values()]
    for name in TOTAL_CHECKS:
        waiting = CheckResult(name, _TITLES[name], SKIPPED,
                              "runs under the freeze (totals over the whole frozen collections)")
        waiting.ran.append({"when": UNDER_FREEZE, "part": "totals", "records": None})
        checks.append(waiting.as_dict())
    failed = [c for c in checks if c["status"] == FAILED]
    reasons = [ROLLBACK_REASONS.get(c["name"], c["title"]) for c in failed]
    return {
        "overall_status": status, "rollback_triggered": status == FAILED,
        "rollback_reason": reasons[0] if reasons else None, "rollback_reasons": reasons,
        "data_loss_percentage": 0.0, "semantic_divergence_percentage": 0.0,
        "record_pass_rate": None, "record_pass_rate_status": "-",
        "records": {"found_on_target": n_checked, "quarantined_in_rejects": 0, "lost": 0, "rejected_by_profile": 0,
                    "rejected_by_profile_unconfirmed": 0},
        "rejected_by_profile_issue_types": {}, "source": options.source_label, "target": options.target_label,
        "source_collections": {}, "target_collections": {}, "source_total": staged, "target_total": staged,
        "rejects_path": None, "source_snapshot": None, "test_queries_path": None, "thresholds": thresholds,
        "checks": checks,
        "summary": {"total": len(checks), "passed": sum(c["status"] == PASSED for c in checks),
                    "warnings": sum(c["status"] == "WARNING" for c in checks), "failed": len(failed),
                    "skipped": sum(c["status"] == SKIPPED for c in checks)},
        "started_at": started_at, "duration_seconds": duration, "durations": {},
        "timing": {"mode": "pre-validation only (the part under the freeze has not run yet)", "precopy": True,
                   "before_freeze_s": duration, "under_freeze_s": None, "records_before_freeze": n_checked,
                   "records_deferred_to_freeze": deferred,
                   "note": f"before the freeze: {n_checked} of {staged} staged records checked; {deferred} changed "
                           "since the pre-copy read them (or not read) are checked under the freeze"},
    }


# --- under the freeze ------------------------------------------------------------------------
def load_prevalidation(report_dir: str, run_id: str) -> Optional[dict[str, Any]]:
    """What ran before the freeze for this run (None: nothing, or another run's file)."""
    path = Path(prevalidation_path(report_dir))
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if data.get("run_id") == run_id else None


def run_freeze_validation(source_client: Any, target_client: Any, transformer: Transformer,
                          options: ValidationOptions, run_id: str, checkpoint_dir: str,
                          write: bool = True) -> dict[str, Any]:
    """The part under the freeze, merged with the part before it; without a pre-validation or a
    delta (pre-copy off, or the migration imported everything under the freeze): every check on
    every record, as :func:`run_validation`."""
    pre = load_prevalidation(options.report_dir, run_id)
    delta = load_delta_ids(delta_ids_path(checkpoint_dir, run_id))
    if pre is None or delta is None or pre.get("overall_status") == FAILED:
        return run_validation(source_client, target_client, transformer, options, write)
    started, started_at = time.monotonic(), utc_stamp()
    thresholds, rejects, queries = options.inputs()
    durations: dict[str, float] = {}
    clock = time.monotonic()
    reader = ParallelReader(options.workers)
    try:
        source, finish_target = _read_frozen(reader, source_client, target_client, transformer, options)
        clock = _lap(durations, "read_source", clock)
        # the target's totals arrive (reader threads, mostly waiting on the server) while the source is transformed
        digests: dict[tuple[str, str], bytes] = {}
        full, memo_stats = _expectation(transformer, source, digests, checkpoint_dir, run_id)
        recheck = _to_recheck(full, digests, pre.get("checked") or {}, delta)
        clock = _lap(durations, "transform", clock)
        target_totals = finish_target()
        clock = _lap(durations, "read_target_totals", clock)
    finally:
        reader.close()
    target_records = {t: read_ids(target_totals[t].handle, t, sorted(ids))
                      for t, ids in recheck.items() if ids and t in target_totals}
    clock = _lap(durations, "read_records_to_recheck", clock)
    n_records = sum(len(v) for v in recheck.values())
    by_name: dict[str, CheckResult] = {}
    records_ctx = _context(options, thresholds, source, target_records, restrict(full, recheck), transformer,
                           rejects, queries)
    totals_ctx = _context(options, thresholds, source, target_totals, full, transformer, rejects, queries)
    for name in registry.CHECKS:
        ctx = records_ctx if name in RECORD_CHECKS else totals_ctx
        by_name[name] = registry.run_check(name, registry.CHECKS[name], ctx)
        clock = _lap(durations, name, clock)
    under = round(time.monotonic() - started, 3)
    merged = _merge(by_name, pre, n_records, options.max_listed_ids)
    extra_failed = {(t, i) for t, i in pre.get("failed") or []}
    report = assemble_report(options, thresholds, full, source, {n: c.count for n, c in target_totals.items()},
                             merged, extra_failed, started_at)
    report["durations"] = durations
    report["duration_seconds"] = under
    report["transform"] = memo_stats
    report["timing"] = {
        "mode": "split", "precopy": True,
        "before_freeze_s": pre.get("duration_s"), "under_freeze_s": under,
        "records_before_freeze": pre.get("records_checked"), "records_under_freeze": n_records,
        "prevalidated_at": pre.get("checked_at"),
        "note": (f"before the freeze (pre-copy): record checks on {pre.get('records_checked')} records in "
                 f"{pre.get('duration_s')} s; under the freeze (delta): record checks on {n_records} records "
                 f"(changed, added or not checked before) + totals over every record in {under} s"),
    }
    done = finish_report(report, options, write)
    if write:  # the validation of this run is written: its memo has served
        remove_memo(transform_memo_path(checkpoint_dir, run_id, "validate"))
    return done


def _expectation(transformer: Transformer, source: dict[str, CollectionData], digests: dict[tuple[str, str], bytes],
                 checkpoint_dir: str, run_id: str) -> tuple[Expectation, dict[str, int]]:
    """The expectation of every source record, reusing what this run's validation made of the records
    whose content did not change since (the transform memo); and how many were reused / transformed."""
    memo = memo_transformer(transformer, transform_memo_path(checkpoint_dir, run_id, "validate"))
    if memo is None:
        return build_expectation_streaming(transformer, source.items(), digests), {}
    try:
        full = build_expectation_streaming(memo, source.items(), digests)
    finally:
        memo.close()
    return full, memo.stats()


def _lap(durations: dict[str, float], name: str, since: float) -> float:
    now = time.monotonic()
    durations[name] = round(now - since, 3)
    return now


def _read_frozen(reader: ParallelReader, source_client: Any, target_client: Any, transformer: Transformer,
                 options: ValidationOptions) -> tuple[dict[str, CollectionData], Callable[[], dict[str, CollectionData]]]:
    """The whole frozen source (snapshot or server), and a call that waits for every target collection
    (without embeddings), whose pages ``reader`` fetches meanwhile."""
    if options.source_snapshot:
        source = read_snapshot_side(options.source_snapshot, options.collections, source_client)
        pending_source: dict[str, Callable[[], CollectionData]] = {}
    else:
        source = {}
        pending_source = start_side(reader, source_client, options.collections or list_names(source_client),
                                    options.page_size, True, "source")
    names = _target_names(transformer, list(source) or list(pending_source), list_names(target_client))
    available = {c.name: c for c in target_client.list_collections()}
    pending_target = {n: reader.submit(available[n], options.page_size, TOTALS_INCLUDE) for n in names}
    source.update(finish_side(pending_source))
    return source, lambda: finish_side(pending_target)


def _to_recheck(full: Expectation, digests: dict[tuple[str, str], bytes], checked: dict[str, dict[str, str]],
                delta: dict[str, set[str]]) -> dict[str, set[str]]:
    """Every expected record but those checked before the freeze with this very content and not sent since."""
    out: dict[str, set[str]] = {}
    for target, records in full.targets.items():
        before = checked.get(target, {})
        sent = delta.get(target, set())
        out[target] = {rid for rid in records
                       if rid in sent or before.get(rid) != digests[(target, rid)].hex()}
    return out


def _merge(freeze: dict[str, CheckResult], pre: dict[str, Any], n_records: int,
           max_ids: int) -> dict[str, CheckResult]:
    """One result per check: the record checks' two parts merged (worst status), the totals as they ran."""
    before = {c["name"]: c for c in pre.get("checks") or []}
    out: dict[str, CheckResult] = {}
    for name, result in freeze.items():
        if name not in RECORD_CHECKS or name not in before:
            result.ran.append({"when": UNDER_FREEZE, "part": "totals" if name in TOTAL_CHECKS else "delta",
                               "records": None if name in TOTAL_CHECKS else n_records, "totals": True})
            out[name] = result
            continue
        earlier = before[name]
        merged = CheckResult(name, _TITLES[name], worst(earlier["status"], result.status),
                             f"before the freeze: {earlier['summary']}; under the freeze: {result.summary}",
                             {"before_freeze": earlier["figures"], "under_freeze": result.figures})
        for kind in set(result.offending) | set(earlier.get("offending_ids") or {}):
            ids = list(result.offending.get(kind, [])) + list((earlier.get("offending_ids") or {}).get(kind, []))
            merged.offending[kind] = ids[:max_ids]
            merged.offending_counts[kind] = (result.offending_counts.get(kind, 0)
                                             + (earlier.get("offending_counts") or {}).get(kind, 0))
        merged.notes = list(earlier.get("notes") or []) + [n for n in result.notes if n not in (earlier.get("notes") or [])]
        merged.failed_ids = set(result.failed_ids)
        merged.ran = list(earlier.get("ran") or []) + [{"when": UNDER_FREEZE, "part": "delta", "records": n_records}]
        out[name] = merged
    return out
