"""Routing rules: which target collection a source record goes to.

Ordered list (group var ``chroma_routing``, module option ``routing``); the first rule
whose every ``match`` key matches names the target. No rule matched -> the source
collection's own name. A rule without ``match`` (or with ``match: {}``) catches all.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ..io.records import Record
from .profile import ProfileError

RULE_KEYS = {"name", "target", "match", "description"}
MATCH_KEYS = {"collection", "document_regex", "metadata"}


@dataclass(frozen=True)
class RoutingRule:
    """One parsed rule."""

    name: str
    target: str
    collections: tuple[str, ...] = ()
    document_regex: Optional[re.Pattern[str]] = None
    metadata: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def matches_collection(self, collection: str) -> bool:
        return not self.collections or any(fnmatch.fnmatchcase(collection, g) for g in self.collections)

    def matches(self, record: Record) -> bool:
        if not self.matches_collection(record.source_collection):
            return False
        if self.document_regex is not None:
            if record.document is None or not self.document_regex.search(record.document):
                return False
        for key, pattern in self.metadata:
            meta = record.metadata or {}
            if key not in meta or meta[key] is None or not pattern.search(str(meta[key])):
                return False
        return True

    @property
    def by_collection_only(self) -> bool:
        """True when the rule looks at nothing but the collection name."""
        return self.document_regex is None and not self.metadata


class Router:
    """Applies the ordered rules."""

    def __init__(self, rules: Sequence[RoutingRule]) -> None:
        self.rules = tuple(rules)

    def route(self, record: Record) -> str:
        rule = self.rule_for(record)
        return rule.target if rule is not None else record.source_collection

    def rule_for(self, record: Record) -> Optional[RoutingRule]:
        for rule in self.rules:
            if rule.matches(record):
                return rule
        return None

    def possible_targets(self, source_collection: str) -> list[str]:
        """Targets records of ``source_collection`` may go to (in rule order)."""
        targets: list[str] = []
        for rule in self.rules:
            if rule.matches_collection(source_collection) and rule.target not in targets:
                targets.append(rule.target)
            if rule.matches_collection(source_collection) and rule.by_collection_only:
                return targets
        if source_collection not in targets:
            targets.append(source_collection)
        return targets

    def targets(self) -> list[str]:
        out: list[str] = []
        for rule in self.rules:
            if rule.target not in out:
                out.append(rule.target)
        return out


def parse_routing(raw: Any, where: str = "routing") -> Router:
    """Validate routing data (None or [] -> keep collection names)."""
    if raw is None:
        return Router(())
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ProfileError(f"{where} must be a list of rules ({{name, target, match}}), got {type(raw).__name__}")
    rules = []
    for i, spec in enumerate(raw):
        rules.append(_parse_rule(spec, f"{where}[{i}]"))
    return Router(rules)


def _parse_rule(spec: Any, where: str) -> RoutingRule:
    if not isinstance(spec, Mapping):
        raise ProfileError(f"{where} must be a dict with target and match")
    unknown = sorted(str(k) for k in spec if k not in RULE_KEYS)
    if unknown:
        raise ProfileError(f"{where}: unknown option(s) {unknown}; known: {sorted(RULE_KEYS)}")
    target = spec.get("target")
    if not isinstance(target, str) or not _valid_collection_name(target):
        raise ProfileError(
            f"{where}.target must be a Chroma collection name (3-512 chars of [a-zA-Z0-9._-], "
            f"starting and ending with a letter or digit), got {target!r}"
        )
    name = str(spec.get("name") or target)
    here = f"{where} ({name})"
    match = spec.get("match") or {}
    if not isinstance(match, Mapping):
        raise ProfileError(f"{here}.match must be a dict (collection, document_regex, metadata)")
    unknown = sorted(str(k) for k in match if k not in MATCH_KEYS)
    if unknown:
        raise ProfileError(f"{here}.match: unknown key(s) {unknown}; known: {sorted(MATCH_KEYS)}")
    collections = match.get("collection") or ()
    if isinstance(collections, str):
        collections = (collections,)
    if not all(isinstance(c, str) and c for c in collections):
        raise ProfileError(f"{here}.match.collection must be a glob or a list of globs")
    document_regex = None
    if match.get("document_regex") is not None:
        document_regex = _compile(match["document_regex"], f"{here}.match.document_regex")
    metadata = match.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise ProfileError(f"{here}.match.metadata must map metadata keys to regular expressions")
    meta_rules = tuple(
        (str(key), _compile(pattern, f"{here}.match.metadata.{key}")) for key, pattern in metadata.items()
    )
    return RoutingRule(name=name, target=target, collections=tuple(collections),
                       document_regex=document_regex, metadata=meta_rules)


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise ProfileError(f"{where} must be a regular expression string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ProfileError(f"{where}: invalid regular expression {pattern!r}: {exc}") from exc


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


def _valid_collection_name(name: str) -> bool:
    return bool(_NAME.match(name)) and ".." not in name
