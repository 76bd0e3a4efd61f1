"""Phase 4: preparing the target collections and writing batches (with retries)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..io.retry import call_with_retry
from ..run.states import Action, Existing, TargetState
from .spool import Batch

EXISTING_MODES = Existing.ALL


class TargetConflict(RuntimeError):
    """Target collections hold records this run did not write (or have other settings)."""


class ImportFailed(RuntimeError):
    """A batch the target refused for good; names collection, batch and id range."""

    def __init__(self, batch: Batch, exc: BaseException, attempts: int) -> None:
        self.batch, self.cause = batch, exc
        super().__init__(
            f"import into collection {batch.target!r} failed at batch {batch.index} "
            f"({len(batch)} records, ids {batch.id_range}) after {attempts} attempt(s): "
            f"{type(exc).__name__}: {exc}"
        )


@dataclass
class TargetPlan:
    """What one target collection will receive and how it is created."""

    name: str
    expected: int = 0
    sources: list[str] = field(default_factory=list)
    configuration: Optional[dict[str, Any]] = None
    metadata: dict[str, Any] = field(default_factory=dict)
    space: Optional[str] = None
    batches: int = 0

    def describe(self) -> dict[str, Any]:
        return {"expected": self.expected, "sources": self.sources, "space": self.space,
                "batches": self.batches}


@dataclass
class TargetAction:
    """What preparing a target does: create, replace, merge, adopt (empty) or nothing (ours)."""

    name: str
    action: str
    preexisting: int = 0
    old_id: Optional[str] = None


def decide_actions(client: Any, plans: list[TargetPlan], state: dict[str, dict[str, Any]],
                   existing: str) -> list[TargetAction]:
    """Classify every target before anything is written; raise TargetConflict listing all problems.

    ``state`` is the checkpoint's per-target state from an earlier attempt of this run.
    """
    existing_names = {c.name for c in client.list_collections()}
    actions, conflicts = [], []
    for plan in plans:
        ck = state.get(plan.name, {})
        if plan.name not in existing_names:
            actions.append(TargetAction(plan.name, Action.CREATE))
            continue
        col = client.get_collection(plan.name)
        col_id = str(col.id)
        status = ck.get("state")
        if status in (TargetState.CREATED, TargetState.REPLACED, TargetState.ADOPTED) and ck.get("id") == col_id:
            actions.append(TargetAction(plan.name, Action.OURS))
        elif ck.get("staging_id") == col_id:  # its staging collection was renamed just before a crash
            actions.append(TargetAction(plan.name, Action.OURS))
        elif status == TargetState.CREATING:
            actions.append(TargetAction(plan.name, Action.OURS))
        elif status == TargetState.REPLACING:
            same = ck.get("old_id") == col_id
            actions.append(TargetAction(plan.name, Action.REPLACE if same else Action.OURS, old_id=ck.get("old_id")))
        elif status == TargetState.MERGED and ck.get("id") == col_id:
            actions.append(TargetAction(plan.name, Action.MERGE, preexisting=int(ck.get("preexisting", 0))))
        else:
            count = int(col.count())
            problem = _settings_problem(col, plan)
            if count == 0 and problem is None:
                actions.append(TargetAction(plan.name, Action.ADOPT))
            elif existing == Existing.REPLACE:
                actions.append(TargetAction(plan.name, Action.REPLACE, preexisting=count, old_id=col_id))
            elif existing == Existing.MERGE and problem is None:
                actions.append(TargetAction(plan.name, Action.MERGE, preexisting=count))
            elif problem is not None:
                conflicts.append(f"{plan.name} ({problem})")
            else:
                conflicts.append(f"{plan.name} ({count} records this run did not write)")
    if conflicts:
        raise TargetConflict(
            "target collection(s) already exist and were not written by this run: "
            + "; ".join(conflicts)
            + ". Nothing was written. Drop them, or set existing=replace (drop and recreate) "
              "or existing=merge (add to them) explicitly."
        )
    return actions


def _settings_problem(col: Any, plan: TargetPlan) -> Optional[str]:
    from ..io.source import distance_space

    space = distance_space(dict(col.metadata or {}), col.configuration_json)
    if plan.space and space != plan.space:
        return f"its distance space is {space}, the migration needs {plan.space}"
    return None


def find_collection(client: Any, name: str) -> Optional[Any]:
    """The collection called ``name``, or None when there is none."""
    if name not in {c.name for c in client.list_collections()}:
        return None
    return client.get_collection(name)


def create_collection(client: Any, plan: TargetPlan) -> Any:
    """Create ``plan.name`` with its configuration (HNSW space and parameters) and metadata."""
    kwargs: dict[str, Any] = {"name": plan.name, "metadata": dict(plan.metadata) or None,
                              "embedding_function": None}
    if plan.configuration:
        kwargs["configuration"] = plan.configuration
    return client.create_collection(**kwargs)


def write_batch(collection: Any, batch: Batch, max_retries: int, retry_delay: float,
                on_retry: Optional[Callable[[int, BaseException, float], None]] = None) -> int:
    """add() one batch; transient errors are retried; returns the number of attempts used."""
    attempts = 0
    documents = batch.documents if any(d is not None for d in batch.documents) else None
    metadatas = batch.metadatas if any(m is not None for m in batch.metadatas) else None

    def add() -> None:
        nonlocal attempts
        attempts += 1
        collection.add(ids=batch.ids, embeddings=batch.embeddings, documents=documents, metadatas=metadatas)

    try:
        call_with_retry(add, max_retries, retry_delay, on_retry)
    except Exception as exc:  # noqa: BLE001 - re-raised with the batch's coordinates
        raise ImportFailed(batch, exc, attempts) from exc
    return attempts
