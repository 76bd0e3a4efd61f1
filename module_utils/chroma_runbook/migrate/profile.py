"""The target metadata schema profile: parsed from data, validated, with clear errors.

A profile (group var ``chroma_schema_profile``, module option ``schema``) says which
metadata fields every migrated record carries, how each is computed from the legacy
record, and what the target collections look like. See docs/CONTRACTS.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from ..run.templating import compile_template

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
}
RANGE_ERROR_ACTIONS = ("clamp", "reject")
NORMALIZERS_PLAIN = ("lower", "upper", "strip")
FIELD_KEYS = {
    "name", "type", "required", "rename_from", "default", "normalize", "allowed", "range",
    "on_range_error", "template", "from_document", "keep_existing", "unique", "regex", "description",
}
PROFILE_KEYS = {"name", "version", "description", "collections", "fields", "collection_fields",
                "keep_unknown_fields", "dimension"}
COLLECTION_KEYS = {"collection_type", "metadata", "configuration", "inherit_metadata", "dimension"}
FROM_DOCUMENT_KEYS = {"regex", "count", "group", "rules", "ignore_case"}


class ProfileError(ValueError):
    """A schema profile or routing table that cannot be used; names the offending field."""


@dataclass(frozen=True)
class Normalizer:
    """One normalisation step applied to a string value."""

    kind: str  # lower | upper | strip | replace | regex_sub
    mapping: Mapping[str, str] = field(default_factory=dict)
    pattern: Optional[re.Pattern[str]] = None
    replacement: str = ""

    def apply(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if self.kind == "lower":
            return value.lower()
        if self.kind == "upper":
            return value.upper()
        if self.kind == "strip":
            return value.strip()
        if self.kind == "replace":
            return self.mapping.get(value, value)
        assert self.pattern is not None
        return self.pattern.sub(self.replacement, value)


@dataclass(frozen=True)
class DocumentExtractor:
    """A value computed from the record's document with a regular expression.

    - ``count: true``  -> number of matches (int)
    - ``group: N``     -> group N of the first match (None when nothing matches)
    - ``rules: [{regex, value}]`` -> value of the first rule whose regex matches
    - otherwise        -> whether the regex matches (bool)
    """

    pattern: Optional[re.Pattern[str]]
    count: bool = False
    group: Optional[int] = None
    rules: tuple[tuple[re.Pattern[str], Any], ...] = ()

    def extract(self, document: Optional[str]) -> Any:
        text = document or ""
        if self.rules:
            for pattern, value in self.rules:
                if pattern.search(text):
                    return value
            return None
        assert self.pattern is not None
        if self.count:
            return sum(1 for _ in self.pattern.finditer(text))
        match = self.pattern.search(text)
        if self.group is not None:
            return match.group(self.group) if match else None
        return match is not None


@dataclass(frozen=True)
class FieldRule:
    """How one target metadata field is produced and what values it may hold."""

    name: str
    type: str
    required: bool = False
    rename_from: tuple[str, ...] = ()
    default: Any = None
    normalize: tuple[Normalizer, ...] = ()
    allowed: Optional[tuple[Any, ...]] = None
    range: Optional[tuple[Optional[float], Optional[float]]] = None
    on_range_error: str = "reject"
    template: Any = None  # a compiled jinja2 Template
    template_source: Optional[str] = None
    from_document: Optional[DocumentExtractor] = None
    keep_existing: bool = False
    unique: bool = False
    regex: Optional[re.Pattern[str]] = None

    @property
    def computed(self) -> bool:
        return self.template is not None or self.from_document is not None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (for reports and the validator)."""
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "allowed": list(self.allowed) if self.allowed is not None else None,
            "range": list(self.range) if self.range is not None else None,
            "regex": self.regex.pattern if self.regex is not None else None,
            "unique": self.unique,
        }


@dataclass(frozen=True)
class CollectionProfile:
    """What the profile says about one target collection."""

    name: str
    collection_type: Optional[str] = None
    metadata: Optional[Mapping[str, Any]] = None
    configuration: Optional[Mapping[str, Any]] = None
    inherit_metadata: bool = True
    dimension: Optional[int] = None


@dataclass(frozen=True)
class SchemaProfile:
    """A parsed, validated schema profile."""

    name: str
    version: Any
    collections: Mapping[str, CollectionProfile]
    fields: tuple[FieldRule, ...]
    collection_fields: Mapping[str, tuple[FieldRule, ...]]
    keep_unknown_fields: bool = False
    dimension: Optional[int] = None

    def rules_for(self, target: str) -> tuple[FieldRule, ...]:
        """Common fields followed by those of the target's collection_type."""
        col = self.collections.get(target)
        extra = self.collection_fields.get(col.collection_type, ()) if col and col.collection_type else ()
        return self.fields + extra


def parse_profile(raw: Any, where: str = "schema") -> Optional[SchemaProfile]:
    """Validate profile data; ``None`` (or ``{}``) means "keep metadata as it is"."""
    if raw is None or (isinstance(raw, Mapping) and not raw):
        return None
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where} must be a dict (or null), got {type(raw).__name__}")
    _reject_unknown_keys(raw, PROFILE_KEYS, where)
    fields = _parse_field_list(raw.get("fields") or [], f"{where}.fields")
    cfields_raw = raw.get("collection_fields") or {}
    if not isinstance(cfields_raw, Mapping):
        raise ProfileError(f"{where}.collection_fields must map a collection_type to a list of fields")
    collection_fields = {
        str(ctype): _parse_field_list(specs or [], f"{where}.collection_fields.{ctype}")
        for ctype, specs in cfields_raw.items()
    }
    for ctype, rules in collection_fields.items():
        _no_duplicate_names(fields + rules, f"{where}.collection_fields.{ctype}")
    collections = _parse_collections(raw.get("collections") or {}, f"{where}.collections")
    for col in collections.values():
        if col.collection_type and cfields_raw and col.collection_type not in collection_fields:
            raise ProfileError(
                f"{where}.collections.{col.name}.collection_type {col.collection_type!r} has no entry "
                f"in {where}.collection_fields (known: {sorted(collection_fields)})"
            )
    return SchemaProfile(
        name=str(raw.get("name") or "unnamed"),
        version=raw.get("version", 1),
        collections=collections,
        fields=fields,
        collection_fields=collection_fields,
        keep_unknown_fields=_bool(raw.get("keep_unknown_fields", False), f"{where}.keep_unknown_fields"),
        dimension=_dimension(raw.get("dimension"), f"{where}.dimension"),
    )


def _parse_collections(raw: Any, where: str) -> dict[str, CollectionProfile]:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where} must map target collection names to their options")
    out = {}
    for name, spec in raw.items():
        spec = spec or {}
        here = f"{where}.{name}"
        if not isinstance(spec, Mapping):
            raise ProfileError(f"{here} must be a dict (collection_type, metadata, configuration)")
        _reject_unknown_keys(spec, COLLECTION_KEYS, here)
        metadata = spec.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ProfileError(f"{here}.metadata must be a dict")
        configuration = spec.get("configuration")
        if configuration is not None and not isinstance(configuration, Mapping):
            raise ProfileError(f"{here}.configuration must be a dict like {{hnsw: {{space: cosine}}}}")
        _check_space(configuration, f"{here}.configuration")
        out[str(name)] = CollectionProfile(
            name=str(name),
            collection_type=str(spec["collection_type"]) if spec.get("collection_type") else None,
            metadata=dict(metadata) if metadata is not None else None,
            configuration=dict(configuration) if configuration is not None else None,
            inherit_metadata=_bool(spec.get("inherit_metadata", True), f"{here}.inherit_metadata"),
            dimension=_dimension(spec.get("dimension"), f"{here}.dimension"),
        )
    return out


def _check_space(configuration: Optional[Mapping[str, Any]], where: str) -> None:
    if not configuration:
        return
    hnsw = configuration.get("hnsw") or {}
    space = hnsw.get("space") if isinstance(hnsw, Mapping) else None
    if space is not None and space not in ("cosine", "l2", "ip"):
        raise ProfileError(f"{where}.hnsw.space must be cosine, l2 or ip, got {space!r}")


def _parse_field_list(raw: Any, where: str) -> tuple[FieldRule, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ProfileError(f"{where} must be a list of field specs")
    rules = tuple(parse_field(spec, f"{where}[{i}]") for i, spec in enumerate(raw))
    _no_duplicate_names(rules, where)
    return rules


def _no_duplicate_names(rules: Sequence[FieldRule], where: str) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ProfileError(f"{where}: field {rule.name!r} is defined twice")
        seen.add(rule.name)


def parse_field(spec: Any, where: str) -> FieldRule:
    """Validate one field spec; errors name ``where`` and the option."""
    if not isinstance(spec, Mapping):
        raise ProfileError(f"{where} must be a dict with at least 'name' and 'type'")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{where}.name must be a non-empty string")
    here = f"{where} ({name})"
    _reject_unknown_keys(spec, FIELD_KEYS, here)
    ftype = spec.get("type")
    if ftype not in FIELD_TYPES:
        raise ProfileError(f"{here}.type must be one of {sorted(FIELD_TYPES)}, got {ftype!r}")
    on_range_error = spec.get("on_range_error", "reject")
    if on_range_error not in RANGE_ERROR_ACTIONS:
        raise ProfileError(f"{here}.on_range_error must be clamp or reject, got {on_range_error!r}")
    rng = _parse_range(spec.get("range"), ftype, f"{here}.range")
    allowed = spec.get("allowed")
    if allowed is not None:
        if not isinstance(allowed, Sequence) or isinstance(allowed, (str, bytes)) or not allowed:
            raise ProfileError(f"{here}.allowed must be a non-empty list of values")
        allowed = tuple(allowed)
    template_source = spec.get("template")
    template = None
    if template_source is not None:
        if not isinstance(template_source, str):
            raise ProfileError(f"{here}.template must be a string")
        try:
            template = compile_template(template_source)
        except Exception as exc:  # jinja2.TemplateSyntaxError and friends
            raise ProfileError(f"{here}.template does not compile: {exc}") from exc
    extractor = _parse_from_document(spec.get("from_document"), ftype, f"{here}.from_document")
    if template is not None and extractor is not None:
        raise ProfileError(f"{here}: use either template or from_document, not both")
    default = spec.get("default")
    if default is not None and not _type_ok(default, ftype):
        raise ProfileError(f"{here}.default {default!r} is not of type {ftype}")
    rename_from = spec.get("rename_from") or []
    if isinstance(rename_from, str):
        rename_from = [rename_from]
    if not all(isinstance(k, str) for k in rename_from):
        raise ProfileError(f"{here}.rename_from must be a list of metadata keys")
    regex = spec.get("regex")
    return FieldRule(
        name=name,
        type=ftype,
        required=_bool(spec.get("required", False), f"{here}.required"),
        rename_from=tuple(rename_from),
        default=default,
        normalize=_parse_normalizers(spec.get("normalize") or [], f"{here}.normalize"),
        allowed=allowed,
        range=rng,
        on_range_error=on_range_error,
        template=template,
        template_source=template_source,
        from_document=extractor,
        keep_existing=_bool(spec.get("keep_existing", False), f"{here}.keep_existing"),
        unique=_bool(spec.get("unique", False), f"{here}.unique"),
        regex=_compile(regex, f"{here}.regex") if regex is not None else None,
    )


def _parse_range(raw: Any, ftype: str, where: str) -> Optional[tuple[Optional[float], Optional[float]]]:
    if raw is None:
        return None
    if ftype not in ("int", "float"):
        raise ProfileError(f"{where} only applies to int or float fields")
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)) or len(raw) != 2:
        raise ProfileError(f"{where} must be [min, max] (either may be null)")
    low, high = raw
    for bound in (low, high):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
            raise ProfileError(f"{where} bounds must be numbers or null, got {bound!r}")
    if low is not None and high is not None and low > high:
        raise ProfileError(f"{where}: min {low} is greater than max {high}")
    return (low, high)


def _parse_normalizers(raw: Any, where: str) -> tuple[Normalizer, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise ProfileError(f"{where} must be a list of steps (lower, upper, strip, {{replace: ..}}, {{regex_sub: ..}})")
    steps = []
    for i, step in enumerate(raw):
        here = f"{where}[{i}]"
        if isinstance(step, str):
            if step not in NORMALIZERS_PLAIN:
                raise ProfileError(f"{here}: unknown normalizer {step!r} (known: {NORMALIZERS_PLAIN}, replace, regex_sub)")
            steps.append(Normalizer(kind=step))
            continue
        if not isinstance(step, Mapping) or len(step) != 1:
            raise ProfileError(f"{here} must be a name or a one-key dict")
        (kind, arg), = step.items()
        if kind == "replace":
            if not isinstance(arg, Mapping):
                raise ProfileError(f"{here}.replace must map old values to new values")
            steps.append(Normalizer(kind="replace", mapping={str(k): str(v) for k, v in arg.items()}))
        elif kind == "regex_sub":
            if not isinstance(arg, Sequence) or isinstance(arg, (str, bytes)) or len(arg) != 2:
                raise ProfileError(f"{here}.regex_sub must be [pattern, replacement]")
            steps.append(Normalizer(kind="regex_sub", pattern=_compile(arg[0], f"{here}.regex_sub"),
                                    replacement=str(arg[1])))
        else:
            raise ProfileError(f"{here}: unknown normalizer {kind!r}")
    return tuple(steps)


def _parse_from_document(raw: Any, ftype: str, where: str) -> Optional[DocumentExtractor]:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where} must be a dict with regex (and count, group or rules)")
    _reject_unknown_keys(raw, FROM_DOCUMENT_KEYS, where)
    flags = re.IGNORECASE if raw.get("ignore_case") else 0
    if raw.get("rules") is not None:
        rules_raw = raw["rules"]
        if not isinstance(rules_raw, Sequence) or not rules_raw:
            raise ProfileError(f"{where}.rules must be a non-empty list of {{regex, value}}")
        rules = []
        for i, rule in enumerate(rules_raw):
            if not isinstance(rule, Mapping) or "regex" not in rule or "value" not in rule:
                raise ProfileError(f"{where}.rules[{i}] needs regex and value")
            if not _type_ok(rule["value"], ftype):
                raise ProfileError(f"{where}.rules[{i}].value {rule['value']!r} is not of type {ftype}")
            rules.append((_compile(rule["regex"], f"{where}.rules[{i}].regex", flags), rule["value"]))
        return DocumentExtractor(pattern=None, rules=tuple(rules))
    if "regex" not in raw:
        raise ProfileError(f"{where}.regex is required")
    pattern = _compile(raw["regex"], f"{where}.regex", flags)
    count = _bool(raw.get("count", False), f"{where}.count")
    group = raw.get("group")
    if count and ftype not in ("int", "float"):
        raise ProfileError(f"{where}.count needs an int field, the field is {ftype}")
    if group is not None:
        if isinstance(group, bool) or not isinstance(group, int) or group < 0 or group > pattern.groups:
            raise ProfileError(f"{where}.group must be 0..{pattern.groups} for regex {pattern.pattern!r}")
    if not count and group is None and ftype != "bool":
        raise ProfileError(f"{where}: a plain regex yields a bool; use count, group or rules for a {ftype} field")
    return DocumentExtractor(pattern=pattern, count=count, group=group)


def _compile(pattern: Any, where: str, flags: int = 0) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise ProfileError(f"{where} must be a regular expression string")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ProfileError(f"{where}: invalid regular expression {pattern!r}: {exc}") from exc


def _reject_unknown_keys(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ProfileError(f"{where}: unknown option(s) {unknown}; known: {sorted(known)}")


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(f"{where} must be true or false, got {value!r}")
    return value


def _dimension(value: Any, where: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProfileError(f"{where} must be a positive integer, got {value!r}")
    return value


def _type_ok(value: Any, ftype: str) -> bool:
    if isinstance(value, bool):
        return ftype == "bool"
    return isinstance(value, FIELD_TYPES[ftype])
