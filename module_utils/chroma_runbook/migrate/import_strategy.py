"""The two ways a migration writes to the target (phases 1-4), as two small strategies.

- ``DirectImport``: validate everything, then write into the target's own collections
  (existing=merge, or staging=false);
- ``StagedImport``: write into the run's staging collections while the scan still runs (or,
  after a pre-copy, send only the delta under the freeze), then rename them to their
  target names once the gate passed.

``choose_strategy`` is the one place that picks one (from the options' import mode). Both
keep the same books in the checkpoint when a target collection is ready
(``ImportStrategy._target_ready``). The pipeline they share (scan, gate, plans, the import
of batches) stays in ``Migration``.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..io.niced import run_niced
from ..run.states import Action, ImportMode, Phase, TargetState
from .checkpoint import CheckpointState, now_iso
from .errors import MigrationError
from .exporter import SourceCollection
from .importer import TargetAction, TargetPlan, create_collection, decide_actions, find_collection
from .precopy import (FingerprintStore, StagingSync, SyncOptions, delta_ids_path, drop_unplanned, fingerprint_path,
                      remove_store, write_delta_ids)
from .scan import ScanResult
from .spool import BatchFeed
from .staging import StagingArea
from .transform_memo import memo_transformer, remove_memo, transform_memo_path

if TYPE_CHECKING:
    from .migration import Migration

# While it overlaps the import, the validation pass yields the CPU to the target's index build
# on a shared host (it only has to finish before the import does, which it does with room).
SCAN_NICENESS = 10

Outcome = tuple[ScanResult, list[TargetPlan]]


class ImportStrategy:
    """What both import modes share: the run they serve and the books they keep."""

    mode: str = ""

    def __init__(self, migration: "Migration") -> None:
        self.migration = migration

    @property
    def state(self) -> CheckpointState:
        assert self.migration.state is not None
        return self.migration.state

    def run(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection],
            previous: Optional[dict[str, Any]]) -> Outcome:
        """Phases 1-4: read, validate, gate and write; the scan and the target plans."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """The run completed: remove what only the import needed (the pre-copy's fingerprint store)."""
        opts = self.migration.opts
        remove_store(fingerprint_path(opts.checkpoint_dir, str(opts.run_id)))
        remove_memo(transform_memo_path(opts.checkpoint_dir, str(opts.run_id)))

    def _target_ready(self, plan: TargetPlan, action: TargetAction, done: str) -> None:
        """Book ``plan.name`` in the checkpoint's collection lists once it holds what it will hold."""
        if done in (TargetState.CREATED, TargetState.REPLACED):
            self.state.list_collection(plan.name, "created_collections")
        if done == TargetState.REPLACED:
            self.state.list_collection(plan.name, "replaced_collections")
        if done == TargetState.MERGED:
            self.state.list_collection(plan.name, "merged_collections")
        if action.action == Action.ADOPT:
            self.state.list_collection(plan.name, "adopted_collections")
        self.migration.log.event("target_ready", collection=plan.name, action=action.action, expected=plan.expected)


class DirectImport(ImportStrategy):
    """Validate everything, then write into the target's collections (existing=merge, staging=false)."""

    mode = ImportMode.DIRECT

    def run(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection],
            previous: Optional[dict[str, Any]]) -> Outcome:
        m = self.migration
        scan = m._reused_scan(previous) or m._scan(src_client, sources)
        m._gate(scan)
        plans = m._plans(scan, sources)
        actions = decide_actions(tgt_client, plans, self.state.data["targets"], m.opts.existing)
        self._prepare_targets(tgt_client, plans, actions)
        collections = {p.name: tgt_client.get_collection(p.name) for p in plans if p.expected}
        m._import(m._spooled_batches(), lambda batch: collections[batch.target])
        return scan, plans

    def _prepare_targets(self, client: Any, plans: list[TargetPlan], actions: list[TargetAction]) -> None:
        plan_by_name = {p.name: p for p in plans}
        for action in actions:
            plan = plan_by_name[action.name]
            done = self._prepare(client, plan, action, self.migration._record_plan(plan))
            self._target_ready(plan, action, done or "")
        self.state.save(phase=Phase.IMPORT)

    def _prepare(self, client: Any, plan: TargetPlan, action: TargetAction, tstate: dict[str, Any]) -> Optional[str]:
        """Make ``plan.name`` ready to receive batches; the target state it ends in (None: left alone)."""
        state = self.state
        if action.action == Action.CREATE:
            was_replacing = tstate.get("state") == TargetState.REPLACING  # dropped just before a crash
            tstate.update(state=TargetState.REPLACING if was_replacing else TargetState.CREATING)
            state.save()
            col = create_collection(client, plan)
            done = TargetState.REPLACED if was_replacing else TargetState.CREATED
            tstate.update(state=done, id=str(col.id))
            self.migration.changed = True
            return done
        if action.action == Action.REPLACE:
            tstate.update(state=TargetState.REPLACING, old_id=action.old_id, replaced_count=action.preexisting)
            state.save()
            if action.old_id is not None and find_collection(client, plan.name) is not None:
                client.delete_collection(plan.name)
            col = create_collection(client, plan)
            tstate.update(state=TargetState.REPLACED, id=str(col.id))
            self.migration.changed = True
            return TargetState.REPLACED
        if action.action == Action.MERGE:
            tstate.update(state=TargetState.MERGED, id=str(client.get_collection(plan.name).id),
                          preexisting=action.preexisting)
            return TargetState.MERGED
        if action.action == Action.ADOPT:
            tstate.update(state=TargetState.ADOPTED, id=str(client.get_collection(plan.name).id))
            return TargetState.ADOPTED
        if tstate.get("state") in (TargetState.CREATING, TargetState.REPLACING):  # created just before a crash
            done = TargetState.CREATED if tstate["state"] == TargetState.CREATING else TargetState.REPLACED
            tstate.update(state=done, id=str(client.get_collection(plan.name).id))
            return done
        return None


class StagedImport(ImportStrategy):
    """Import into staging collections (while the scan runs, or as a delta after a pre-copy); rename them
    to their target names once the gate passed."""

    mode = ImportMode.STAGED

    def __init__(self, migration: "Migration") -> None:
        super().__init__(migration)
        self._store: Optional[FingerprintStore] = None  # pre-copy/delta: what the staging collections hold

    def run(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection],
            previous: Optional[dict[str, Any]]) -> Outcome:
        if self.state.data.get("precopy"):
            return self.delta(src_client, tgt_client, sources)
        return self._overlapped(src_client, tgt_client, sources, previous)

    # --- the staging collections and what undoes them ------------------------------------
    def staging_area(self, tgt_client: Any, sources: list[SourceCollection]) -> StagingArea:
        m, state = self.migration, self.state
        by_name = {s.name: s for s in sources}
        return StagingArea(tgt_client, str(m.opts.run_id), state.data["targets"],
                           lambda target, source: m._target_settings(target, by_name[source]),
                           state.save, m.log.event, state.lock)

    def drop_staging(self, staging: StagingArea) -> list[str]:
        """Drop the run's staging collections and forget the batches they held (a resume sends them again)."""
        dropped = staging.drop_all()
        if self._store is not None:  # what the staging held went with it
            self._store.clear()
        self.state.save(last_batch_index=-1, acked_beyond=[], successful_chunks=0,
                        processed_chunks=int(self.state.data.get("failed_chunks", 0)))
        return dropped

    def _undo(self, staging: StagingArea) -> Callable[[], list[str]]:
        return lambda: self.drop_staging(staging)

    def _decide_or_drop(self, tgt_client: Any, plans: list[TargetPlan], staging: StagingArea) -> list[TargetAction]:
        """decide_actions on the target's own names; a conflict drops the staging first."""
        try:
            return decide_actions(tgt_client, plans, self.state.data["targets"], self.migration.opts.existing)
        except Exception as exc:  # TargetConflict: undo the staging
            dropped = self.drop_staging(staging)
            raise RuntimeError(f"{exc} Staging collections dropped: {', '.join(dropped) or 'none'}.") from exc

    def promote(self, plans: list[TargetPlan], actions: list[TargetAction], staging: StagingArea) -> None:
        """Every batch is acknowledged: the staging collections take their target names."""
        m, state = self.migration, self.state
        plan_by_name = {p.name: p for p in plans}
        state.save(phase=Phase.PROMOTE)
        for action in actions:
            plan = plan_by_name[action.name]
            m._record_plan(plan)
            done = staging.promote(plan, action)
            if done != Action.OURS:
                m.changed = True
            self._target_ready(plan, action, done)
        state.save()

    # --- reading, validating and importing at once ----------------------------------------
    def _overlapped(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection],
                    previous: Optional[dict[str, Any]]) -> Outcome:
        """Import into staging collections while the scan runs; rename them once the gate passed."""
        m = self.migration
        m._check_names_early(tgt_client, sources)
        staging = self.staging_area(tgt_client, sources)
        scan = m._reused_scan(previous)
        worker: Optional[threading.Thread] = None
        if scan is None:  # read, validate and import at once: batches go out as soon as they close
            scan, worker = self._scan_while_importing(src_client, sources, staging)
        try:
            m._gate(scan, self._undo(staging))
            plans = m._plans(scan, sources, self._undo(staging))
            actions = decide_actions(tgt_client, plans, self.state.data["targets"], m.opts.existing)
            self.state.save(phase=Phase.IMPORT)  # the gate passed: what is left is the import's backlog
        except MigrationError:
            raise
        except Exception as exc:  # TargetConflict, a source that cannot be planned: undo the staging
            dropped = self.drop_staging(staging)
            raise RuntimeError(f"{exc} Staging collections dropped: {', '.join(dropped) or 'none'}.") from exc
        if worker is None:
            m._import(m._spooled_batches(), lambda b: staging.collection_for(b.target, b.source))
        else:
            worker.join()
            if m._import_errors:
                raise m._import_errors[0]
        self.promote(plans, actions, staging)
        return scan, plans

    def _scan_while_importing(self, src_client: Any, sources: list[SourceCollection],
                              staging: StagingArea) -> tuple[ScanResult, threading.Thread]:
        """The scan, niced, with an import thread sending each batch to staging as soon as it closes."""
        m = self.migration
        feed = BatchFeed(m.opts.spool_dir)

        def run_import() -> None:
            try:
                m._import(iter(feed), lambda b: staging.collection_for(b.target, b.source), overlapped=True)
            except BaseException as exc:  # noqa: BLE001 - raised in the main thread (and stops the scan)
                m._import_errors.append(exc)

        worker = threading.Thread(target=run_import, name="chroma-import", daemon=True)
        worker.start()

        def halt() -> None:  # before staging is dropped, nothing may still be writing to it
            feed.abort()
            worker.join()

        staging.halt = halt
        try:
            scan = run_niced(lambda: m._scan(src_client, sources, on_batch=feed.put), SCAN_NICENESS,
                             name="chroma-validate")
        except BaseException:
            halt()
            raise
        feed.close()
        return scan, worker

    # --- pre-copy while live, delta under the freeze (precopy.py) ---------------------------
    def precopy(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection],
                counts: dict[str, int]) -> dict[str, Any]:
        """Copy the live source into the staging collections; no gate, no promotion (the delta does those)."""
        m, state = self.migration, self.state
        if state.data.get("delta") or state.phase in (Phase.PROMOTE, Phase.VERIFY):
            m.log.event("precopy_skipped", reason="the delta pass under the freeze has begun")
            return dict(m._result(), changed=False, precopy={"skipped": True, "phase": state.phase})
        if m.check_mode:
            m._check_names_early(tgt_client, sources)
            return dict(m._result(), changed=sum(counts.values()) > 0,
                        precopy={"would_read": sum(counts.values()), "source_counts": counts})
        m._check_names_early(tgt_client, sources)
        started = now_iso()
        state.save(phase=Phase.PRECOPY, precopy={"started_at": started, "source_counts": counts,
                                                 "batch_size": m.opts.batch_size},
                   synced_chunks=0, synced_batches=0)
        m.log.event("phase", phase=Phase.PRECOPY, collections=[s.describe() for s in sources])
        t0 = time.perf_counter()
        scan, sync = self._sync(src_client, tgt_client, sources, live=True)
        stats = dict(sync.stats.to_dict(), read=scan.total, duration_s=round(time.perf_counter() - t0, 3))
        m.changed = m.changed or stats["added"] + stats["replaced"] > 0
        m.phases["precopy"] = stats
        state.save(phase=Phase.PRECOPIED, precopy=dict(stats, started_at=started, completed_at=now_iso(),
                                                       source_counts=counts))
        m.log.event("precopied", **stats)
        return dict(m._result(), precopy=stats)

    def delta(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection]) -> Outcome:
        """Under the freeze: send staging exactly what changed since the pre-copy, then gate and promote."""
        m, state = self.migration, self.state
        m._check_names_early(tgt_client, sources)
        delta = dict(state.data.get("delta") or {})
        if delta.get("applied") and state.data.get("scan"):  # resumed after the delta: staging is exact
            scan = ScanResult.from_dict(state.data["scan"])
            staging = self.staging_area(tgt_client, sources)
            m.phases["delta"] = dict(delta, reused=True)
        else:
            scan, staging = self._apply_delta(src_client, tgt_client, sources)
        m._gate(scan, self._undo(staging))
        plans = m._plans(scan, sources, self._undo(staging))
        dropped = drop_unplanned(staging, self._fingerprints(), [p.name for p in plans])
        if dropped:
            m.log.event("staging_unplanned_dropped", staging=dropped)
        actions = self._decide_or_drop(tgt_client, plans, staging)
        state.save(phase=Phase.IMPORT)
        self.promote(plans, actions, staging)
        return scan, plans

    def _apply_delta(self, src_client: Any, tgt_client: Any,
                     sources: list[SourceCollection]) -> tuple[ScanResult, StagingArea]:
        m, state = self.migration, self.state
        state.save(phase=Phase.DELTA, delta={"started_at": now_iso()}, synced_chunks=0, synced_batches=0)
        m.log.event("phase", phase=Phase.DELTA, collections=[s.describe() for s in sources])
        t0 = time.perf_counter()
        scan, sync = self._sync(src_client, tgt_client, sources, live=False)
        scan.sample = _merge_sample(scan.sample, sync.stats.changed_sample)
        delta = dict(sync.stats.to_dict(), applied=True, read=scan.total,
                     duration_s=round(time.perf_counter() - t0, 3))
        m.phases["delta"] = delta
        # every id any delta attempt of this run sent: the validation under the freeze re-checks them
        write_delta_ids(delta_ids_path(m.opts.checkpoint_dir, str(m.opts.run_id)), self._fingerprints().touched())
        m._record_scan(scan)
        with state.lock:
            for name, info in scan.targets.items():
                state.target(name)["imported"] = info["expected"]
            state.save(delta=delta, successful_chunks=scan.valid, processed_chunks=scan.total)
        m.log.event("delta_applied", **{k: v for k, v in delta.items() if k != "applied"})
        return scan, sync.staging

    def _fingerprints(self) -> FingerprintStore:
        if self._store is None:
            opts = self.migration.opts
            self._store = FingerprintStore(fingerprint_path(opts.checkpoint_dir, str(opts.run_id)))
        return self._store

    def _sync(self, src_client: Any, tgt_client: Any, sources: list[SourceCollection],
              live: bool) -> tuple[ScanResult, StagingSync]:
        m = self.migration
        opts = m.opts
        memo = memo_transformer(opts.transformer, transform_memo_path(opts.checkpoint_dir, str(opts.run_id)))
        sync = StagingSync(src_client, sources, memo or opts.transformer, self.staging_area(tgt_client, sources),
                           self._fingerprints(),
                           SyncOptions(opts.batch_size, opts.max_body_bytes, opts.page_size, opts.verify_sample,
                                       opts.writers, opts.max_retries, opts.retry_delay),
                           log=m.log.event)
        sync.progress = m._scan_progress  # what was read; what was sent is counted as the target acknowledges it
        sync.on_sent = lambda stats: self.state.save(synced_chunks=stats.added + stats.replaced,
                                                     synced_batches=stats.batches)
        try:
            scan = sync.run(live, opts.rejects_path)
        finally:
            if memo is not None:
                memo.close()
        if memo is not None:
            sync.stats.transform = memo.stats()
        return scan, sync

    def cleanup(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        super().cleanup()


def choose_strategy(migration: "Migration") -> ImportStrategy:
    """The one place the import mode picks its strategy."""
    if migration.opts.import_mode == ImportMode.STAGED:
        return StagedImport(migration)
    return DirectImport(migration)


def _merge_sample(sample: list[list[str]], extra: list[list[str]]) -> list[list[str]]:
    """The verification sample plus every record the delta sent (each once)."""
    seen = {tuple(s) for s in sample}
    return sample + [e for e in extra if tuple(e) not in seen]
