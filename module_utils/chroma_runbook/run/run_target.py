"""What a run wrote to the target, read from its own records, and what the target holds now.

The rollback's authority on the target. From the run directory (never trusted blindly: a
truncated checkpoint or a corrupt state.json is a *problem* to report, not an error):

- ``created``: collections the migration created (or replaced), each with the id it recorded
  in the checkpoint; a collection is this run's own copy only while its live id is that id;
- ``expected``: per collection, the records the migration wrote (plus, after a merge, what was
  there before), to tell writes that reached the target after a cutover;
- staging collections (``staging-<sha1(run_id)[:10]>-<target>``) of an interrupted import.

``leftovers`` looks at earlier runs instead: collections a rolled-back run created and kept
(recorded with id and count when it was rolled back) that nobody touched since (same id, same
count) are the runbook's own copies; the next migration may replace them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .names import staging_prefix
from .states import TargetState

OWN_STATES = TargetState.OWN


@dataclass
class RunRecords:
    """What the run directory says the run did on the target (and what could not be read)."""

    run_id: str
    created: dict[str, Optional[str]] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    phase: str = ""
    problems: list[str] = field(default_factory=list)


def read_json(path: Path, what: str, problems: list[str]) -> Optional[dict[str, Any]]:
    """The JSON object in ``path``; None (and a problem named) when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        problems.append(f"{what} {path} cannot be read ({exc})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{what} {path} is not a JSON object")
        return None
    return data


def read_run(run_dir: Path, run_id: str) -> RunRecords:
    """The run's target records, preferring the checkpoint (written by the migration itself)."""
    records = RunRecords(run_id)
    ckpt = read_json(run_dir / "checkpoint" / f"{run_id}.checkpoint.json", "checkpoint", records.problems)
    state = read_json(run_dir / "state.json", "state file", records.problems)
    if ckpt is not None:
        records.phase = str(ckpt.get("phase") or "")
        for name, target in (ckpt.get("targets") or {}).items():
            if target.get("state") in OWN_STATES or name in (ckpt.get("created_collections") or []):
                records.created[name] = target.get("id")
            records.expected[name] = int(target.get("imported") or 0) + int(target.get("preexisting") or 0)
        return records
    result = (((state or {}).get("steps") or {}).get("migrate") or {}).get("result") or {}
    if result:
        records.expected = {k: int(v or 0) for k, v in (result.get("target_counts") or {}).items()}
        records.created = {name: None for name in result.get("created_collections") or []}
        records.problems.append("no readable checkpoint: the collections this run created have no recorded id "
                                "(none can be proven to be this run's own copy)")
    elif state is None or "migrate" in (state.get("steps") or {}) or (state.get("data") or {}).get("migrate"):
        records.problems.append("no readable checkpoint or migration result: what this run wrote to the target "
                                "is unknown")
    return records


def live_collections(client: Any) -> dict[str, Any]:
    return {c.name: c for c in client.list_collections()}


def surplus_after_cutover(client: Any, records: RunRecords, known: list[str]) -> dict[str, dict[str, int]]:
    """Per collection, how the target now differs from what the migration wrote.

    ``known``: other names that were there before the run (they are not the run's writes).
    A collection the migration never wrote to counts whole (the apps created it after the cutover).
    """
    out: dict[str, dict[str, int]] = {}
    prefix = staging_prefix(records.run_id)
    for name, col in live_collections(client).items():
        if name.startswith(prefix) or (name not in records.expected and name in known):
            continue
        live, recorded = int(col.count()), records.expected.get(name, 0)
        if live != recorded:
            out[name] = {"recorded": recorded, "live": live, "difference": live - recorded}
    return out


def drop_own(client: Any, records: RunRecords, check_mode: bool) -> dict[str, Any]:
    """Drop the collections this run created (live id = recorded id) and its staging collections."""
    live = live_collections(client)
    dropped, kept = [], {}
    for name, recorded_id in sorted(records.created.items()):
        col = live.get(name)
        if col is None:
            continue
        if recorded_id is None or str(col.id) != recorded_id:
            kept[name] = (f"not dropped: its id {col.id} is not the one this run recorded ({recorded_id or 'none'})"
                          "; it is not provably this run's copy")
            continue
        dropped.append(name)
    prefix = staging_prefix(records.run_id)
    staging = sorted(n for n in live if n.startswith(prefix))
    if not check_mode:
        for name in dropped + staging:
            client.delete_collection(name)
    return {"dropped": dropped, "dropped_staging": staging, "kept": kept}


def own_copies(client: Any, records: RunRecords) -> dict[str, dict[str, Any]]:
    """The collections this run created that still carry the recorded id: {name: {id, count}}."""
    live = live_collections(client)
    out = {}
    for name, recorded_id in records.created.items():
        col = live.get(name)
        if col is not None and recorded_id is not None and str(col.id) == recorded_id:
            out[name] = {"id": recorded_id, "count": int(col.count())}
    return out


def leftovers(client: Any, runs_dir: Path, exclude_run: str = "") -> dict[str, dict[str, Any]]:
    """Target collections a rolled-back run created and kept, untouched since: {name: {run_id, id, count}}."""
    live = live_collections(client)
    found: dict[str, dict[str, Any]] = {}
    if not runs_dir.is_dir():
        return found
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        if run_dir.name == exclude_run:
            continue
        state = read_json(run_dir / "state.json", "state file", [])
        if not state or state.get("status") != "rolled_back":
            continue
        kept = ((state.get("data") or {}).get("rollback") or {}).get("target_kept") or {}
        for name, rec in kept.items():
            col = live.get(name)
            if col is None or not isinstance(rec, dict) or str(col.id) != str(rec.get("id")):
                continue
            if int(col.count()) == int(rec.get("count", -1)):
                found[name] = {"run_id": run_dir.name, "id": str(col.id), "count": int(rec["count"])}
    return found


def drop_leftovers(client: Any, found: dict[str, dict[str, Any]], check_mode: bool) -> list[str]:
    """Drop the leftovers found (their id is checked once more right before)."""
    dropped = []
    live = live_collections(client)
    for name, rec in sorted(found.items()):
        col = live.get(name)
        if col is None or str(col.id) != rec["id"] or int(col.count()) != rec["count"]:
            continue
        if not check_mode:
            client.delete_collection(name)
        dropped.append(name)
    return dropped


__all__ = ["RunRecords", "read_run", "surplus_after_cutover", "drop_own", "own_copies", "leftovers",
           "drop_leftovers"]
