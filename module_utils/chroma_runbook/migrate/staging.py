"""Staging collections: where batches land while validation still runs.

Reading and writing overlap: the import sends each batch as soon as validation closes it,
but into a staging collection named after the run (``staging-<hash of run_id>-<target>``),
never into the target's own collections. Only when the min_valid_ratio gate has passed,
the target's names were checked and every batch was acknowledged, are the staging
collections renamed to their target names (a rename in Chroma keeps the id, the index and
the records, and takes milliseconds). If the gate fails, the staging collections are
dropped and the target's collections were never touched.

The checkpoint's per-target entry records ``staging`` and ``staging_id``, so a resumed
run finds its staging collections again, and a crash in the middle of promotion is
finished by the next attempt.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from ..run.names import MAX_NAME, STAGING_PREFIX, staging_name, staging_prefix  # noqa: F401 - the name rule lives in names
from ..run.states import Action, TargetState
from .importer import TargetAction, TargetPlan, create_collection, find_collection

class StagingLost(RuntimeError):
    """A staging collection that holds acknowledged batches has disappeared."""


class StagingArea:
    """Creates staging collections on first use, drops them, and promotes them to their names.

    ``targets`` is the checkpoint's per-target state (updated in place); ``save`` persists it.
    ``settings_for(target, source_name)`` gives the TargetPlan (configuration, metadata) a
    staging collection is created with.
    """

    def __init__(self, client: Any, run_id: str, targets: dict[str, dict[str, Any]],
                 settings_for: Callable[[str, str], TargetPlan], save: Callable[[], None],
                 log: Callable[..., None], lock: Optional[threading.RLock] = None) -> None:
        self.client, self.run_id, self.targets = client, run_id, targets
        self.settings_for, self.save, self.log = settings_for, save, log
        self._collections: dict[str, Any] = {}
        self._lock = lock or threading.RLock()  # the checkpoint's lock: ``targets`` belongs to it
        self.halt: Optional[Callable[[], None]] = None  # stops the import that feeds the staging
        self._closed = False

    # --- during the import -------------------------------------------------------------
    def collection_for(self, target: str, source: str) -> Any:
        """The staging collection of ``target`` (created with ``source``'s settings when new)."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"staging of run {self.run_id} was dropped; batch for {target} not sent")
            col = self._collections.get(target)
            if col is None:
                col = self._collections[target] = self._find_or_create(target, source)
            return col

    def _find_or_create(self, target: str, source: str) -> Any:
        tstate = self.targets.setdefault(target, {})
        name = staging_name(self.run_id, target)
        existing = find_collection(self.client, name)
        known_id = tstate.get("staging_id")
        if known_id is not None:
            if existing is not None and str(existing.id) == known_id:
                return existing
            raise StagingLost(
                f"staging collection {name} of target {target} (id {known_id}) holds batches this run already "
                f"sent, but it is gone from the target; the run cannot resume. Start again with resume=false.")
        if existing is not None:  # created just before a crash, before the checkpoint knew it: nothing acknowledged
            self.client.delete_collection(name)
        plan = self.settings_for(target, source)
        plan.name = name
        col = create_collection(self.client, plan)
        tstate.update(staging=name, staging_id=str(col.id), state=TargetState.STAGING)
        self.save()
        self.log("staging_created", collection=target, staging=name, source=source)
        return col

    # --- when the gate fails ---------------------------------------------------------
    def drop_all(self) -> list[str]:
        """Stop the import, then drop every staging collection of this run; the names dropped."""
        if self.halt is not None:
            self.halt()
        with self._lock:
            self._closed = True
            return self._drop()

    def _drop(self) -> list[str]:
        dropped = []
        prefix = staging_prefix(self.run_id)
        for col in self.client.list_collections():
            if col.name.startswith(prefix):
                self.client.delete_collection(col.name)
                dropped.append(col.name)
        for tstate in self.targets.values():  # what was acknowledged went with the staging
            for key in ("staging", "staging_id", "imported", "batches_done"):
                tstate.pop(key, None)
            if tstate.get("state") == TargetState.STAGING:
                tstate.pop("state")
        self._collections.clear()
        self.save()
        return dropped

    def drop_one(self, target: str) -> Optional[str]:
        """Drop ``target``'s staging collection (the frozen source no longer feeds it); its name or None."""
        with self._lock:
            self._collections.pop(target, None)
            tstate = self.targets.pop(target, {})
            name = staging_name(self.run_id, target)
            found = find_collection(self.client, name)
            if found is not None and (tstate.get("staging_id") in (None, str(found.id))):
                self.client.delete_collection(name)
            self.save()
            self.log("staging_dropped", collection=target, staging=name)
            return name if found is not None else None

    # --- after the gate and the last acknowledgement ------------------------------------
    def promote(self, plan: TargetPlan, action: TargetAction) -> str:
        """Give ``plan.name`` the staged records; returns what was done (created, replaced, ours).

        ``action`` comes from decide_actions on the target's own names: create (the name is
        free), replace (drop the collection there first), adopt (an empty one is there),
        ours (an earlier attempt of this run already promoted it).
        """
        tstate = self.targets.setdefault(plan.name, {})
        if action.action == Action.OURS:
            if tstate.get("state") == TargetState.PROMOTING:  # renamed just before a crash: finish the books
                return self._promoted(plan.name, tstate)
            return Action.OURS
        staged = find_collection(self.client, staging_name(self.run_id, plan.name)) if tstate.get("staging_id") else None
        if staged is None:  # nothing staged: an empty source collection still gets its target
            if action.action in (Action.REPLACE, Action.ADOPT) and find_collection(self.client, plan.name) is not None:
                self.client.delete_collection(plan.name)
            col = create_collection(self.client, plan)
            tstate.update(state=TargetState.CREATED, id=str(col.id))
            self.save()
            return TargetState.CREATED
        if tstate.get("state") != TargetState.PROMOTING:
            tstate.update(state=TargetState.PROMOTING,
                          promote_as=TargetState.REPLACED if action.action == Action.REPLACE else TargetState.CREATED,
                          old_id=action.old_id, replaced_count=action.preexisting)
            self.save()
        if action.action in (Action.REPLACE, Action.ADOPT):
            current = find_collection(self.client, plan.name)
            if current is not None and str(current.id) != tstate["staging_id"]:
                self.client.delete_collection(plan.name)
        staged.modify(name=plan.name)
        return self._promoted(plan.name, tstate)

    def _promoted(self, name: str, tstate: dict[str, Any]) -> str:
        done = str(tstate.pop("promote_as", TargetState.CREATED))
        tstate.update(state=done, id=tstate.pop("staging_id"))
        tstate.pop("staging", None)
        self.save()
        self.log("promoted", collection=name, action=done)
        return done
