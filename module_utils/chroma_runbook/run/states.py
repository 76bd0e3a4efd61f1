"""The states a migration's checkpoint records, written once as typed constants.

The checkpoint (``<run_id>.checkpoint.json``) stores them as plain strings; these are
those strings, so a checkpoint written before the constants existed loads unchanged.
They live in ``run`` (not ``migrate``) because the rollback reads checkpoints too
(``run_target``). Plain ``str`` constants, not an Enum: they go into JSON files and
module results as they are.
"""
from __future__ import annotations

from typing import Final


class Phase:
    """The checkpoint's ``phase``: where the run is (or where it stopped)."""

    EXPORT: Final = "export"
    VALIDATED: Final = "validated"
    VALIDATE: Final = "validate"  # a failed gate or plan: the phase an error names
    IMPORT: Final = "import"
    PROMOTE: Final = "promote"
    VERIFY: Final = "verify"
    COMPLETED: Final = "completed"
    PRECOPY: Final = "precopy"
    PRECOPIED: Final = "precopied"
    DELTA: Final = "delta"


class TargetState:
    """A target collection's ``state`` in the checkpoint's ``targets`` entry."""

    STAGING: Final = "staging"  # batches go to its staging collection
    PROMOTING: Final = "promoting"  # the staging collection is being renamed to the target's name
    CREATING: Final = "creating"
    CREATED: Final = "created"
    REPLACING: Final = "replacing"
    REPLACED: Final = "replaced"
    MERGED: Final = "merged"
    ADOPTED: Final = "adopted"
    # collections this run made itself (the rollback drops them while their id is the recorded one)
    OWN: Final = (CREATED, REPLACED)


class ImportMode:
    """How batches reach the target (the checkpoint's ``import_mode``)."""

    DIRECT: Final = "direct"  # into the target's own collections (existing=merge, or staging=false)
    STAGED: Final = "staged"  # into staging collections, renamed once the gate passed


class Existing:
    """What to do with a target collection that already exists (option ``existing``)."""

    FAIL: Final = "fail"
    REPLACE: Final = "replace"
    MERGE: Final = "merge"
    ALL: Final = (FAIL, REPLACE, MERGE)


class Action:
    """What the import does to one target collection (``importer.TargetAction.action``)."""

    CREATE: Final = "create"
    REPLACE: Final = "replace"
    MERGE: Final = "merge"
    ADOPT: Final = "adopt"  # an empty collection of that name is there: take it over
    OURS: Final = "ours"  # an earlier attempt of this run already made it
    WRITES_NEW: Final = (CREATE, REPLACE)
