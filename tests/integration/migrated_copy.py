"""A faithful migrated copy for validator tests: the source pushed through the engine's
Transformer (the migration's own code) into a target, with a rejects file.

This is a test fixture, not the migration: chroma_migrate has its own pipeline; the
validator must accept any faithful copy and catch any damaged one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from chroma_runbook.io.records import Record
from chroma_runbook.migrate.record_checks import RecordValidator
from chroma_runbook.snapshot.restore import creation_configuration
from chroma_runbook.io.source import collection_space
from chroma_runbook.migrate.transform import Transformer
from chroma_runbook.validation.sides import read_collection
from tests.lab_vars import group_var

REPO = Path(__file__).resolve().parents[2]


def lab_profile() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The lab's routing rules and schema profile (group_vars/all)."""
    return group_var("routing.yml", "chroma_routing"), group_var("schema_profile.yml", "chroma_schema_profile")


def migrate_copy(source: Any, target: Any, transformer: Transformer, rejects_path: Optional[Path] = None,
                 batch: int = 1000) -> dict[str, int]:
    """Copy every source collection through ``transformer``; return counts per target."""
    declared = {t: transformer.declared_dimension(t) for t in transformer.target_collections()}
    validator = RecordValidator(declared_dimensions=declared, unique_fields=transformer.unique_fields())
    pending: dict[str, list[Record]] = {}
    created: dict[str, Any] = {}
    rejects = []
    for coll in sorted(source.list_collections(), key=lambda c: c.name):
        data = read_collection(coll, 1000)
        space = collection_space(coll)
        for row, rid in enumerate(data.ids):
            rec = Record(rid, data.vectors[row], data.documents[row], data.metadatas[row], coll.name)
            out = transformer.transform(rec, source_space=space)
            if validator.validate(out):
                rejects.append({"id": rid, "source_collection": coll.name, "issues": out.issues})
                continue
            if out.target_collection not in created:
                config = transformer.collection_configuration(out.target_collection, coll.configuration_json)
                created[out.target_collection] = target.create_collection(
                    out.target_collection, configuration=creation_configuration(config),
                    metadata=transformer.collection_metadata(out.target_collection, coll.metadata) or None,
                    embedding_function=None)
            pending.setdefault(out.target_collection, []).append(out)
    for name, records in pending.items():
        for start in range(0, len(records), batch):
            part = records[start:start + batch]
            created[name].add(ids=[r.id for r in part], embeddings=[r.embedding for r in part],
                              documents=[r.document for r in part], metadatas=[r.metadata for r in part])
    if rejects_path is not None:
        rejects_path.write_text("".join(json.dumps(r) + "\n" for r in rejects))
    return {name: len(records) for name, records in pending.items()}
