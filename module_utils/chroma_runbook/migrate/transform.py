"""The Transformer: routing + schema profile applied to one record at a time.

Shared by ``chroma_migrate`` (to write) and ``chroma_validate`` (to predict what the
target must hold). Stateless per record; cross-record checks live in
``record_checks.RecordValidator``.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..io.records import Record
from .profile import FieldRule, SchemaProfile, parse_profile
from .record_checks import (
    check_embedding,
    check_field,
    check_identity,
    check_metadata_values,
    coerce,
)
from .routing import Router, parse_routing

HNSW_METADATA_PREFIX = "hnsw:"


class Transformer:
    """Routes records and rewrites their metadata according to a schema profile."""

    def __init__(self, router: Router, profile: Optional[SchemaProfile], options: Any = None) -> None:
        self.router = router
        self.profile = profile
        self.options = options  # the routing and schema data it was parsed from (None: built in code)
        self._rules_cache: dict[str, tuple[FieldRule, ...]] = {}

    @classmethod
    def from_options(cls, routing: Any = None, schema: Any = None) -> "Transformer":
        """Parse routing and schema data; raises ProfileError naming the bad option."""
        return cls(parse_routing(routing, "routing"), parse_profile(schema, "schema"),
                   options={"routing": routing, "schema": schema})

    # --- routing -------------------------------------------------------------------
    def route(self, record: Record) -> str:
        return self.router.route(record)

    def target_collections(self) -> list[str]:
        """Targets named by the routing rules and the profile (may be empty)."""
        names = self.router.targets()
        if self.profile is not None:
            names += [n for n in self.profile.collections if n not in names]
        return names

    # --- profile queries ----------------------------------------------------------
    def field_rules(self, target: str) -> dict[str, FieldRule]:
        return {rule.name: rule for rule in self._rules(target)}

    def required_fields(self, target: str) -> list[str]:
        return [rule.name for rule in self._rules(target) if rule.required]

    def unique_fields(self) -> list[str]:
        if self.profile is None:
            return []
        names = [r.name for r in self.profile.fields if r.unique]
        for rules in self.profile.collection_fields.values():
            names += [r.name for r in rules if r.unique and r.name not in names]
        return names

    def collection_type(self, target: str) -> Optional[str]:
        if self.profile is None or target not in self.profile.collections:
            return None
        return self.profile.collections[target].collection_type

    def declared_dimension(self, target: str) -> Optional[int]:
        if self.profile is None:
            return None
        col = self.profile.collections.get(target)
        return (col.dimension if col else None) or self.profile.dimension

    def configured_space(self, target: str) -> Optional[str]:
        """The distance space the profile fixes for ``target`` (None: inherit from the source)."""
        if not self._profile_configures(target):
            return None
        hnsw = (self.collection_configuration(target, None) or {}).get("hnsw") or {}
        return hnsw.get("space")

    def target_space(self, target: str, source_space: Optional[str]) -> Optional[str]:
        return self.configured_space(target) or source_space

    def collection_metadata(self, target: str, source_metadata: Optional[Mapping[str, Any]]) -> dict[str, Any]:
        """Metadata to create ``target`` with: the source's, overlaid by the profile's.

        When the profile fixes the configuration, the source's ``hnsw:*`` keys are
        dropped (they would override it).
        """
        col = self.profile.collections.get(target) if self.profile else None
        out: dict[str, Any] = {}
        if col is None or col.inherit_metadata:
            out.update(source_metadata or {})
        if self._profile_configures(target):
            out = {k: v for k, v in out.items() if not str(k).startswith(HNSW_METADATA_PREFIX)}
        if col is not None and col.metadata:
            out.update(col.metadata)
        return out

    def collection_configuration(self, target: str, source_configuration: Optional[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
        """Configuration to create ``target`` with: the profile's when given, else the source's."""
        col = self.profile.collections.get(target) if self.profile else None
        if col is not None and col.configuration:
            return dict(col.configuration)
        return dict(source_configuration) if source_configuration else None

    def _profile_configures(self, target: str) -> bool:
        col = self.profile.collections.get(target) if self.profile else None
        return bool(col is not None and col.configuration)

    def _rules(self, target: str) -> tuple[FieldRule, ...]:
        if self.profile is None:
            return ()
        if target not in self._rules_cache:
            self._rules_cache[target] = self.profile.rules_for(target)
        return self._rules_cache[target]

    # --- the transform ------------------------------------------------------------
    def prefetch(self, source: str, ids: Sequence[str]) -> None:
        """Records of ``source`` with these ids come next: nothing to read ahead here (see MemoTransformer)."""

    def transform(self, record: Record, source_space: Optional[str] = None) -> Record:
        """A new Record routed and rewritten; ``issues`` lists why it must be rejected.

        ``source_space`` (the source collection's distance space) decides the zero-vector
        check when the profile does not fix the target's space.
        """
        target = self.route(record)
        issues = check_identity(record)
        issues += check_embedding(record.embedding, self.target_space(target, source_space))
        if self.profile is None:
            metadata = dict(record.metadata) if record.metadata is not None else None
        else:
            metadata, field_issues = self._apply_profile(record, target)
            issues += field_issues
        issues += check_metadata_values(metadata)
        return Record(
            id=record.id,
            embedding=record.embedding,
            document=record.document,
            metadata=metadata,
            source_collection=record.source_collection,
            target_collection=target,
            issues=issues,
        )

    def _apply_profile(self, record: Record, target: str) -> tuple[Optional[dict[str, Any]], list[str]]:
        assert self.profile is not None
        legacy = record.metadata or {}
        fields: dict[str, Any] = {}
        issues: list[str] = []
        context = {
            "id": record.id,
            "document": record.document,
            "metadata": legacy,
            "source_collection": record.source_collection,
            "target_collection": target,
            "collection_type": self.collection_type(target),
            "fields": fields,
        }
        consumed: set[str] = set()
        for rule in self._rules(target):
            value, issue = self._field_value(rule, record, legacy, context, consumed)
            if issue:
                issues.append(issue)
            elif value is not None:
                fields[rule.name] = value
        if self.profile.keep_unknown_fields:
            extra = {k: v for k, v in legacy.items() if k not in consumed and k not in fields}
            fields = {**extra, **fields}
        return (fields or None), issues

    def _field_value(self, rule: FieldRule, record: Record, legacy: Mapping[str, Any],
                     context: dict[str, Any], consumed: set[str]) -> tuple[Any, Optional[str]]:
        value = None
        for key in (rule.name, *rule.rename_from):
            if key in legacy:
                consumed.add(key)
                if value is None and legacy[key] is not None:
                    value = legacy[key]
        if rule.computed and not (rule.keep_existing and value is not None):
            try:
                value = self._compute(rule, record, context)
            except Exception as exc:  # a template that fails at render time
                return None, f"template_error:{rule.name}:{type(exc).__name__}"
        if value is None or (value == "" and rule.default is not None):
            value = rule.default
        for step in rule.normalize:
            value = step.apply(value)
        value, ok = coerce(value, rule.type)
        if not ok:
            return None, f"invalid_type:{rule.name}"
        if value is None:
            return None, f"missing_required_field:{rule.name}" if rule.required else None
        return check_field(rule, value)

    @staticmethod
    def _compute(rule: FieldRule, record: Record, context: dict[str, Any]) -> Any:
        if rule.from_document is not None:
            return rule.from_document.extract(record.document)
        rendered = rule.template.render(context).strip()
        return rendered if rendered not in ("", "None") else None
