"""The migration run: export -> transform -> validate -> (gate) -> import -> verify.

Resumable: the checkpoint (written atomically after every acknowledged batch) says
which batches the target has; a run started again with the same run_id re-sends at
most the one batch that was in flight (add() of an existing id is ignored), so the
target ends exactly as an uninterrupted run leaves it.

The seams: ``checkpoint.CheckpointState`` keeps the checkpoint, ``import_strategy`` holds
the direct and the staged import (with the pre-copy and the delta), and the states the
checkpoint records are the constants of ``run.states``. This module runs the phases and
the pipeline both imports share (scan, gate, plans, sending batches, verification).
"""
from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..io.connection import connect
from ..io.fsutil import make_private_dir
from ..io.jsonlog import RunLog
from ..io.prefetch import prefetch
from ..io.source import SourceRefused, describe_source, open_source, require_current
from ..run.run_lock import RunLock, check_not_held
from ..run.states import Action, ImportMode, Phase
from .batch_writer import AckTracker, write_all
from .checkpoint import CheckpointState, checkpoint_path, load, now_iso
from .errors import MigrationError
from .exporter import SourceCollection, select_collections
from .import_strategy import ImportStrategy, StagedImport, choose_strategy
from .importer import TargetAction, TargetPlan, decide_actions, write_batch
from .migration_options import MigrationOptions
from .scan import RejectsWriter, ScanOptions, ScanResult, scan_sources
from .spool import Batch, BatchRef, SpoolWriter, iter_batches, load_manifest, remove
from .verify import verify_counts, verify_sample

__all__ = ["Migration", "MigrationError", "run_migration"]

# undoes what a failed gate or plan leaves behind (the staged import's staging collections); the names dropped
Undo = Callable[[], list[str]]


class Migration:
    """One invocation of a migration run (``check_mode`` = the dry run: nothing written)."""

    def __init__(self, options: MigrationOptions, check_mode: bool = False,
                 progress: Optional[Callable[[dict[str, Any]], None]] = None) -> None:
        self.opts = options.validate()
        self.check_mode = check_mode
        self.progress = progress
        self._last_progress = 0.0
        self.ckpt_path = checkpoint_path(self.opts.checkpoint_dir, str(self.opts.run_id))
        self.log = RunLog(None, str(self.opts.run_id))  # opened once the lock is held
        self.started = time.monotonic()
        self.phases: dict[str, dict[str, Any]] = {}
        self.changed = False
        self.state: Optional[CheckpointState] = None
        self._import_errors: list[BaseException] = []
        self.strategy: ImportStrategy = choose_strategy(self)

    # --- entry point ----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        # an unsupported or unsafe source (0.3, 0.6+, an old persist directory) is refused
        # before anything is written: no lock, no log, no checkpoint
        self.source_version = describe_source(self.opts.source_spec)
        if self.check_mode:
            check_not_held(self.opts.checkpoint_dir, self.opts.lock_path)
            if self.opts.check_scope == "options":
                return self._options_checked()
            return self._run_locked()
        make_private_dir(Path(self.opts.checkpoint_dir))  # the lock may live elsewhere (lock_dir)
        lock = RunLock(self.opts.checkpoint_dir, str(self.opts.run_id), self.opts.lock_path).acquire()
        try:
            self.log = RunLog(self.opts.log_path, str(self.opts.run_id))
            return self._run_locked()
        finally:
            lock.release()
            self.log.close()

    def _run_locked(self) -> dict[str, Any]:
        opts = self.opts
        self.log.event("start", source=opts.source_spec.describe(), target=opts.target_spec.describe(),
                       batch_size=opts.batch_size, dry_run=self.check_mode, pid=os.getpid())
        previous = load(self.ckpt_path) if opts.resume else None
        if previous is not None:
            self._check_resumable(previous)
        self.state = CheckpointState(self.ckpt_path, previous, not self.check_mode) if previous else \
            CheckpointState.fresh(opts, self.ckpt_path, not self.check_mode)
        self.state.data["attempts"] = int(self.state.data.get("attempts", 0)) + (0 if self.check_mode else 1)
        try:
            return self._phases(previous)
        except MigrationError:
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__) else str(exc)
            self._fail(str(self.state.data.get("phase")), message)
            raise MigrationError(message, self._result(failed=True)) from exc

    def _source_reader(self) -> Any:
        """The server, or under the freeze the reader the caller gave (the run's snapshot of the frozen source)."""
        opts = self.opts
        if opts.source_reader is None or opts.precopy:
            self.source_read_from = "server"
            return _connect(opts.source_spec, "source")
        reader = opts.source_reader()
        self.source_read_from = str(getattr(reader, "label", "snapshot"))
        self.log.event("source_reader", read_from=self.source_read_from)
        return reader

    def _phases(self, previous: Optional[dict[str, Any]]) -> dict[str, Any]:
        opts, state = self.opts, self.state
        assert state is not None
        src_client = self._source_reader()
        tgt_client = _connect(opts.target_spec, "target")
        sources = select_collections(src_client, opts.collections)
        counts = {s.name: s.count for s in sources}
        if opts.precopy:  # the source is live: its counts move, and prove nothing yet
            if state.phase == Phase.COMPLETED:
                return self._already_completed(src_client, tgt_client, sources)
            assert isinstance(self.strategy, StagedImport)  # the options refuse precopy without staging
            return self.strategy.precopy(src_client, tgt_client, sources, counts)
        if previous is not None and previous.get("source_counts") and previous["source_counts"] != counts:
            raise MigrationError(
                f"the source changed since run {opts.run_id} started (collection counts were "
                f"{previous['source_counts']}, now {counts}); writes must stay frozen during a migration. "
                f"Start again with resume=false or another run_id.", self._result(failed=True))
        state.save(source_counts=counts)
        if state.phase == Phase.COMPLETED:
            return self._already_completed(src_client, tgt_client, sources)

        if self.check_mode:
            scan = self._scan(src_client, sources)
            self._gate(scan)
            plans = self._plans(scan, sources)
            return self._dry_run_result(scan, plans, decide_actions(tgt_client, plans, state.data["targets"], opts.existing))
        scan, plans = self.strategy.run(src_client, tgt_client, sources, previous)
        verification = self._verify(src_client, tgt_client, sources, scan, plans)
        if not verification["ok"]:
            message = "verification failed: " + verification["summary"]
            self._fail(Phase.VERIFY, message)
            raise MigrationError(message, self._result(failed=True, verification=verification))
        state.save(phase=Phase.COMPLETED, completed_at=now_iso())
        if not opts.keep_spool:
            remove(opts.spool_dir)
            self.strategy.cleanup()
        result = self._result(verification=verification)
        state.save(result=result)
        self.log.event("completed", elapsed_s=result["elapsed_s"], imported=result["imported"])
        return result

    def _options_checked(self) -> dict[str, Any]:
        """The preflight's dry run: options, run id, lock and checkpoint were accepted; nothing read or written."""
        previous = load(self.ckpt_path) if self.opts.resume else None
        if previous is not None:
            self._check_resumable(previous)
        return {"changed": False, "dry_run": True, "check_scope": "options", "run_id": self.opts.run_id,
                "phase": (previous or {}).get("phase", "none"), "resumable": previous is not None,
                "lock_path": self.opts.lock_path, "import_mode": self.opts.import_mode}

    # --- resume rules -------------------------------------------------------------
    def _check_resumable(self, previous: dict[str, Any]) -> None:
        mode = previous.get("import_mode", ImportMode.DIRECT)
        if mode != self.opts.import_mode and previous.get("phase") != Phase.COMPLETED:
            raise MigrationError(
                f"checkpoint {self.ckpt_path} of run {self.opts.run_id} was written by a {mode} import and this "
                f"attempt would be {self.opts.import_mode} (staging={self.opts.staging}, existing={self.opts.existing}); "
                f"resuming would lose track of what was written. Use the original options, another run_id, "
                f"or resume=false.")
        if previous.get("fingerprint") == self.opts.fingerprint:
            return
        old = previous.get("fingerprint_parts") or {}
        changed = sorted(k for k, v in self.opts.fingerprint_parts().items() if old.get(k) != v)
        raise MigrationError(
            f"checkpoint {self.ckpt_path} of run {self.opts.run_id} was made with other options "
            f"(changed: {', '.join(changed) or 'unknown'}); resuming would mix two migrations. "
            f"Use the original options, another run_id, or resume=false.")

    def _already_completed(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection]) -> dict[str, Any]:
        """A completed run: check the target still holds what it wrote; change nothing."""
        state = self.state
        assert state is not None
        expected = {name: int(t.get("expected", 0)) + int(t.get("preexisting", 0))
                    for name, t in state.data["targets"].items()}
        t0 = time.perf_counter()
        counts = verify_counts(tgt_client, expected)
        self.phases["verify"] = {"duration_s": round(time.perf_counter() - t0, 3), "counts": counts}
        if not all(c["ok"] for c in counts.values()):
            bad = {n: c for n, c in counts.items() if not c["ok"]}
            raise MigrationError(
                f"run {self.opts.run_id} completed earlier, but the target no longer matches it: {bad}. "
                f"Use resume=false (and existing=replace) to migrate again.", self._result(failed=True))
        if not self.check_mode:  # a crash between "completed" and removing the spool left it behind
            remove(self.opts.spool_dir)
            self.strategy.cleanup()
        result = dict(state.data.get("result") or {})
        result.update(changed=False, already_completed=True, dry_run=self.check_mode,
                      current_counts={n: c["count"] for n, c in counts.items()})
        self.log.event("already_completed", counts=counts)
        return result

    def _check_names_early(self, client: Any, sources: list[SourceCollection]) -> None:
        """Target names already known from collection routing are checked before any write."""
        t = self.opts.transformer
        assert t is not None and self.state is not None
        plans = []
        for source in sources:
            possible = t.router.possible_targets(source.name)
            if len(possible) == 1 and source.count:
                plans.append(TargetPlan(name=possible[0], space=t.target_space(possible[0], source.space)))
        unique = list({p.name: p for p in plans}.values())
        decide_actions(client, unique, self.state.data["targets"], self.opts.existing)

    # --- phases 1-3 ---------------------------------------------------------------
    def _reused_scan(self, previous: Optional[dict[str, Any]]) -> Optional[ScanResult]:
        """The scan of an earlier attempt whose spool is complete (nothing to read again)."""
        if previous is None or not previous.get("spool_complete") or not previous.get("scan") or self.check_mode:
            return None
        if load_manifest(self.opts.spool_dir, self.opts.fingerprint) is None:
            return None
        scan = ScanResult.from_dict(previous["scan"])
        self.phases.update(export={"records": scan.total, "reused_spool": True, "duration_s": 0.0},
                           transform={"records": scan.total, "duration_s": 0.0},
                           validate={"valid": scan.valid, "rejected": scan.rejected, "duration_s": 0.0})
        self.log.event("scan_reused", valid=scan.valid, rejected=scan.rejected)
        return scan

    def _scan(self, client: Any, sources: list[SourceCollection],
              on_batch: Optional[Callable[[BatchRef], None]] = None) -> ScanResult:
        opts, state = self.opts, self.state
        assert state is not None
        state.save(phase=Phase.EXPORT, spool_complete=False)
        self.log.event("phase", phase=Phase.EXPORT, collections=[s.describe() for s in sources],
                       import_alongside=on_batch is not None)
        spool = None if self.check_mode else SpoolWriter(opts.spool_dir, on_batch)
        rejects = RejectsWriter(None if self.check_mode else opts.rejects_path)
        t0 = time.perf_counter()
        try:
            scan = scan_sources(client, sources, opts.transformer,
                                ScanOptions(opts.batch_size, opts.max_body_bytes, opts.page_size, opts.verify_sample),
                                spool, rejects, self._scan_progress)
            if spool is not None:
                spool.finish(opts.fingerprint)
        except BaseException:
            if spool is not None:
                spool.abort()
            raise
        finally:
            rejects.close()
        elapsed = time.perf_counter() - t0
        self.phases.update(
            export={"records": scan.total, "collections": len(sources), "duration_s": scan.durations["export"]},
            transform={"records": scan.total, "duration_s": scan.durations["transform"]},
            validate={"valid": scan.valid, "rejected": scan.rejected, "duration_s": scan.durations["validate"]},
        )
        self.phases["export"]["pass_duration_s"] = round(elapsed, 3)
        self._record_scan(scan, spool_complete=spool is not None)
        self.log.event("validated", total=scan.total, valid=scan.valid, rejected=scan.rejected,
                       by_issue=scan.by_issue, duration_s=round(elapsed, 3))
        return scan

    def _record_scan(self, scan: ScanResult, spool_complete: bool = False) -> None:
        state = self.state
        assert state is not None
        with state.lock:
            state.save(phase=Phase.VALIDATED, scan=scan.to_dict(), spool_complete=spool_complete,
                       total_chunks=scan.total, valid_chunks=scan.valid, failed_chunks=scan.rejected,
                       processed_chunks=scan.rejected + int(state.data.get("successful_chunks", 0)),
                       rejects_by_issue=scan.by_issue,
                       total_batches=sum(t["batches"] for t in scan.targets.values()))

    def _scan_progress(self, scan: ScanResult) -> None:
        if self._import_errors:  # the import running alongside stopped for good: stop reading too
            raise self._import_errors[0]
        now = time.monotonic()
        if self.state is not None and now - self._last_progress >= 2.0:
            self._last_progress = now
            self.state.save(exported_chunks=scan.total, rejected_so_far=scan.rejected)
        if self.progress is not None:
            self.progress({"phase": Phase.EXPORT, "read": scan.total, "valid": scan.valid, "rejected": scan.rejected})

    def _gate(self, scan: ScanResult, undo: Optional[Undo] = None) -> None:
        if scan.valid_ratio >= self.opts.min_valid_ratio:
            return
        top = ", ".join(f"{issue}: {n}" for issue, n in scan.top_issues())
        written = "nothing was written to the target"
        if undo is not None:
            dropped = undo()
            written = ("the target's collections were not touched" + (
                f" (the batches already staged in {', '.join(dropped)} were dropped)" if dropped else ""))
        message = (
            f"only {scan.valid} of {scan.total} records are valid ({scan.valid_ratio:.2%}), below "
            f"min_valid_ratio {self.opts.min_valid_ratio:.2%}; {written}. "
            f"Top issues: {top}. Rejected records: {self.opts.rejects_path if not self.check_mode else '(dry run: not written)'}"
        )
        self._fail(Phase.VALIDATE, message)
        if self.state is not None:  # nothing to resume from: a fixed source must be read again
            self.state.save(spool_complete=False, scan=None, last_batch_index=-1, acked_beyond=[],
                            successful_chunks=0, processed_chunks=0)
        remove(self.opts.spool_dir)
        raise MigrationError(message, self._result(failed=True, scan=scan))

    def _target_settings(self, target: str, source: SourceCollection) -> TargetPlan:
        """How ``target`` is created when ``source`` is the first collection routed to it."""
        t = self.opts.transformer
        assert t is not None
        return TargetPlan(name=target, configuration=t.collection_configuration(target, source.configuration),
                          metadata=t.collection_metadata(target, source.metadata),
                          space=t.target_space(target, source.space))

    def _plans(self, scan: ScanResult, sources: list[SourceCollection],
               undo: Optional[Undo] = None) -> list[TargetPlan]:
        """Target collections with their settings; sources that disagree on settings are an error."""
        t = self.opts.transformer
        assert t is not None
        by_name = {s.name: s for s in sources}
        plans: dict[str, TargetPlan] = {}
        for name, info in scan.targets.items():
            plans[name] = TargetPlan(name=name, expected=info["expected"], sources=list(info["sources"]),
                                     batches=info["batches"])
        for source in sources:  # empty source collections still exist on the target
            if source.count == 0:
                possible = t.router.possible_targets(source.name)
                if len(possible) == 1 and possible[0] not in plans:
                    plans[possible[0]] = TargetPlan(name=possible[0], sources=[source.name])
                elif len(possible) == 1 and source.name not in plans[possible[0]].sources:
                    plans[possible[0]].sources.append(source.name)
        problems = []
        for plan in plans.values():
            first = by_name[plan.sources[0]]
            if t.collection_configuration(plan.name, None) is None:
                differing = [s for s in plan.sources
                             if (by_name[s].configuration, _hnsw_meta(by_name[s])) != (first.configuration, _hnsw_meta(first))]
                if differing:
                    problems.append(
                        f"target {plan.name} receives records from {first.name} ({first.space}) and "
                        f"{', '.join(f'{s} ({by_name[s].space})' for s in differing)} whose index settings differ; "
                        f"set schema.collections.{plan.name}.configuration")
            settings = self._target_settings(plan.name, first)
            plan.configuration, plan.metadata, plan.space = settings.configuration, settings.metadata, settings.space
        if problems:
            written = "Nothing was written."
            if undo is not None:
                dropped = undo()
                written = ("The target's collections were not touched" +
                           (f"; staging collections dropped: {', '.join(dropped)}." if dropped else "."))
            message = "; ".join(problems) + ". " + written
            self._fail(Phase.VALIDATE, message)
            raise MigrationError(message, self._result(failed=True, scan=scan))
        return list(plans.values())

    def _record_plan(self, plan: TargetPlan) -> dict[str, Any]:
        """Note what ``plan.name`` will hold in its checkpoint entry; that entry."""
        state = self.state
        assert state is not None
        with state.lock:
            tstate = state.target(plan.name)
            tstate.update(expected=plan.expected, sources=plan.sources, space=plan.space, batches_total=plan.batches)
            tstate.setdefault("imported", 0)
            tstate.setdefault("batches_done", 0)
        return tstate

    def _spooled_batches(self) -> Iterator[Batch]:
        """The batches of the complete spool the target has not acknowledged yet."""
        opts, state = self.opts, self.state
        assert state is not None
        manifest = load_manifest(opts.spool_dir, opts.fingerprint)
        if manifest is None:
            raise MigrationError(f"the spool {opts.spool_dir} is missing or incomplete; start again with resume=false",
                                 self._result(failed=True))
        return iter_batches(opts.spool_dir, manifest, int(state.data["last_batch_index"]))

    def _import(self, batches: Iterator[Batch], collection_for: Callable[[Batch], Any], overlapped: bool = False) -> None:
        """Send ``batches`` (skipping acknowledged ones) to ``collection_for(batch)``, checkpointing each ack."""
        opts, state = self.opts, self.state
        assert state is not None
        written = batches_sent = retries = skipped = 0
        t0 = time.perf_counter()
        self.log.event("phase", phase=Phase.IMPORT, resume_after_batch=state.data["last_batch_index"],
                       total_batches=state.data["total_batches"], alongside_validation=overlapped)
        if not overlapped:
            state.save(phase=Phase.IMPORT)

        def on_retry(attempt: int, exc: BaseException, delay: float, batch_index: int, target: str) -> None:
            nonlocal retries
            retries += 1
            self.log.event("retry", level="warning", collection=target, batch_index=batch_index, attempt=attempt,
                           delay_s=delay, error=f"{type(exc).__name__}: {exc}")

        tracker = AckTracker(int(state.data["last_batch_index"]), state.data.get("acked_beyond") or [])
        stream = prefetch(batches, depth=2, name="chroma-import-read")

        def send(batch: Batch) -> None:
            write_batch(collection_for(batch), batch, opts.max_retries, opts.retry_delay,
                        lambda a, e, d: on_retry(a, e, d, batch.index, batch.target))

        def acknowledged(batch: Batch) -> None:
            nonlocal written, batches_sent
            written += len(batch)
            batches_sent += 1
            self.changed = True
            self._acknowledge(batch, tracker)

        def skip(_batch: Any) -> None:
            nonlocal skipped
            skipped += 1

        try:
            write_all(stream, tracker, opts.writers, send, acknowledged, skip)
        finally:
            stream.close()
            self.phases["import"] = self._import_phase(written, batches_sent, skipped, retries, time.perf_counter() - t0)
            self.phases["import"]["alongside_validation"] = overlapped
        self.log.event("imported", records=written, batches=batches_sent, skipped_batches=skipped, retries=retries,
                       duration_s=self.phases["import"]["duration_s"])

    def _acknowledge(self, batch: Any, tracker: AckTracker) -> None:
        """The target acknowledged ``batch``: record it durably (called under the writers' lock)."""
        state = self.state
        assert state is not None
        with state.lock:
            tstate = state.target(batch.target)
            tstate["imported"] = int(tstate.get("imported", 0)) + len(batch)
            tstate["batches_done"] = int(tstate.get("batches_done", 0)) + 1
            successful = int(state.data["successful_chunks"]) + len(batch)
            state.save(last_batch_index=tracker.last, acked_beyond=sorted(tracker.beyond),
                       successful_chunks=successful, processed_chunks=successful + int(state.data["failed_chunks"]))
        self.log.event("batch", collection=batch.target, batch_index=batch.index, records=len(batch),
                       first_id=batch.ids[0], last_id=batch.ids[-1])

    @staticmethod
    def _import_phase(written: int, batches: int, skipped: int, retries: int, elapsed: float) -> dict[str, Any]:
        return {"records": written, "batches": batches, "skipped_batches": skipped, "retries": retries,
                "duration_s": round(elapsed, 3),
                "chunks_per_s": round(written / elapsed, 1) if elapsed > 0 else 0.0}

    # --- phase 5 --------------------------------------------------------------------
    def _verify(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection], scan: ScanResult,
                plans: list[TargetPlan]) -> dict[str, Any]:
        state = self.state
        assert state is not None
        state.save(phase=Phase.VERIFY)
        t0 = time.perf_counter()
        expected = {p.name: p.expected + int(state.target(p.name).get("preexisting", 0)) for p in plans}
        counts = verify_counts(tgt_client, expected)
        sample = verify_sample(src_client, tgt_client, sources, self.opts.transformer, scan.sample,
                               {p.name: p.space for p in plans})
        ok = all(c["ok"] for c in counts.values()) and sample["ok"]
        bad = [f"{n}: expected {c['expected']}, found {c['count']}" for n, c in counts.items() if not c["ok"]]
        summary = "; ".join(bad + ([f"{sample['mismatch_count']} sampled record(s) differ, e.g. {sample['mismatches'][:3]}"]
                                   if not sample["ok"] else []))
        verification = {"ok": ok, "passed": ok, "counts": counts, "sample": sample, "summary": summary or "all counts match, sample identical"}
        self.phases["verify"] = {"duration_s": round(time.perf_counter() - t0, 3), "sampled": sample["sampled"],
                                 "passed": ok}
        self.log.event("verified", ok=ok, summary=verification["summary"])
        return verification

    # --- results ----------------------------------------------------------------------
    def _fail(self, phase: str, message: str) -> None:
        if self.state is not None:
            self.state.error(phase, message)
        self.log.event("failed", level="error", phase=phase, message=message)

    def _dry_run_result(self, scan: ScanResult, plans: list[TargetPlan], actions: list[TargetAction]) -> dict[str, Any]:
        would = {a.name: a.action for a in actions}
        self.phases["import"] = {"records": 0, "batches": 0, "would_write_records": scan.valid,
                                 "would_write_batches": sum(p.batches for p in plans),
                                 "would_create": [n for n, a in would.items() if a in Action.WRITES_NEW],
                                 "duration_s": 0.0}
        result = self._result(scan=scan, plans=plans)
        result["target_actions"] = would
        # check mode reports whether a real run would change the target
        result["changed"] = scan.valid > 0 or any(a in Action.WRITES_NEW for a in would.values())
        return result

    def _result(self, failed: bool = False, verification: Optional[dict[str, Any]] = None,
                scan: Optional[ScanResult] = None, plans: Optional[list[TargetPlan]] = None) -> dict[str, Any]:
        state = self.state
        data = state.data if state is not None else {}
        scan_dict = scan.to_dict() if scan is not None else data.get("scan") or {}
        elapsed = time.monotonic() - self.started
        targets: dict[str, Any] = {}
        if plans is not None:
            targets = {p.name: {"expected": p.expected, "imported": 0, "batches": p.batches, "sources": p.sources,
                                "space": p.space} for p in plans}
        else:
            for name, t in data.get("targets", {}).items():
                targets[name] = {k: t.get(k) for k in ("expected", "imported", "batches_total", "batches_done",
                                                        "sources", "space", "state", "preexisting")}
        imported_now = self.phases.get("import", {}).get("records", 0)
        import_s = self.phases.get("import", {}).get("duration_s", 0.0)
        return {
            "changed": self.changed,
            "failed": failed,
            "dry_run": self.check_mode,
            "run_id": self.opts.run_id,
            "phase": data.get("phase"),
            "phases": self.phases,
            "total": scan_dict.get("total", 0),
            "valid": scan_dict.get("valid", 0),
            "rejected": scan_dict.get("rejected", 0),
            "valid_ratio": round(scan_dict["valid"] / scan_dict["total"], 6) if scan_dict.get("total") else 1.0,
            "imported": int(data.get("successful_chunks", 0)),
            "rejects_by_issue": scan_dict.get("by_issue", {}),
            "rejects_sample": scan_dict.get("rejects_sample", []),
            "by_source": scan_dict.get("by_source", {}),
            "targets": targets,
            "created_collections": data.get("created_collections", []),
            "replaced_collections": data.get("replaced_collections", []),
            "merged_collections": data.get("merged_collections", []),
            "verification": verification,
            "throughput_chunks_per_s": round(imported_now / import_s, 1) if import_s else 0.0,
            "elapsed_s": round(elapsed, 3),
            "source_version": getattr(self, "source_version", None),
            "source_read_from": getattr(self, "source_read_from", None),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "attempts": data.get("attempts", 0),
            "errors": data.get("errors", []),
            "checkpoint_path": None if self.check_mode else self.ckpt_path,
            "rejects_path": None if self.check_mode else self.opts.rejects_path,
            "log_path": None if self.check_mode else self.opts.log_path,
        }


def _connect(spec: Any, side: str) -> Any:
    """The source through the one source reader (any supported version); the target must be 1.x."""
    try:
        if side == "source":
            return open_source(spec)
        require_current(spec, side)
        return connect(spec)
    except SourceRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - the client raises ValueError, httpx errors...
        raise RuntimeError(f"cannot connect to the {side} {spec.describe()}: {exc}") from exc


def _hnsw_meta(source: SourceCollection) -> dict[str, Any]:
    return {k: v for k, v in source.metadata.items() if str(k).startswith("hnsw:")}


def run_migration(options: MigrationOptions, check_mode: bool = False) -> dict[str, Any]:
    """Run (or dry-run) a migration; raises MigrationError with a partial result on failure."""
    return Migration(options, check_mode).run()
