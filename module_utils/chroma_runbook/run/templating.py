"""Jinja2 templates in schema profiles (sandboxed; a few regex filters)."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Optional

from jinja2 import ChainableUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def regex_search(value: Any, pattern: str, group: int = 0) -> Optional[str]:
    """``{{ document | regex_search('(\\w+)ness', 1) }}``: group of the first match or None."""
    match = _regex(pattern).search("" if value is None else str(value))
    return match.group(group) if match else None


def regex_count(value: Any, pattern: str) -> int:
    """``{{ document | regex_count('\\S+') }}``: number of matches."""
    return sum(1 for _ in _regex(pattern).finditer("" if value is None else str(value)))


def regex_replace(value: Any, pattern: str, replacement: str = "") -> str:
    return _regex(pattern).sub(replacement, "" if value is None else str(value))


def _test_search(value: Any, pattern: str) -> bool:
    return value is not None and _regex(pattern).search(str(value)) is not None


def _build_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
    env.filters.update(regex_search=regex_search, regex_count=regex_count, regex_replace=regex_replace)
    env.tests.update(search=_test_search)
    return env


ENVIRONMENT = _build_environment()


def compile_template(source: str) -> Any:
    """An object with ``render(context: dict) -> str``; raises jinja2.TemplateSyntaxError on bad syntax."""
    template = ENVIRONMENT.from_string(source)  # validates the syntax either way
    return fast_template(source) or _SharedContextTemplate(template)


class _Undefined:
    """What a missing name renders as in the fast path (Jinja's ChainableUndefined: empty)."""


_UNDEFINED = _Undefined()


class FastTemplate:
    """Templates made only of text and ``{{ name }}`` / ``{{ name.attr }}`` lookups, rendered
    without building a Jinja context (the common case: ``if://citation/{{ id }}``).
    Renders exactly what Jinja renders for them."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts  # str (literal) or tuple of names (lookup path)

    def render(self, context: dict[str, Any]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value: Any = context.get(part[0], _UNDEFINED)
            for attr in part[1:]:
                if isinstance(value, dict):
                    value = value.get(attr, _UNDEFINED)
                else:
                    value = _UNDEFINED
                if value is _UNDEFINED:
                    break
            out.append("" if value is _UNDEFINED else str(value))
        return "".join(out)


class _SharedContextTemplate:
    """A compiled Jinja template rendered with a shared context (no copy of the variables)."""

    def __init__(self, template: Any) -> None:
        self.template = template

    def render(self, context: dict[str, Any]) -> str:
        tmpl = self.template
        return ENVIRONMENT.concat(tmpl.root_render_func(tmpl.new_context(context, shared=True)))  # type: ignore[attr-defined]


def _lookup_path(node: Any) -> Optional[tuple[str, ...]]:
    from jinja2 import nodes

    path: list[str] = []
    while isinstance(node, nodes.Getattr):
        if node.attr.startswith("_"):
            return None
        path.append(node.attr)
        node = node.node
    if isinstance(node, nodes.Name) and not node.name.startswith("_"):
        return (node.name, *reversed(path))
    return None


def fast_template(source: str) -> Optional[FastTemplate]:
    """A FastTemplate for ``source`` when it only has text and plain lookups, else None."""
    from jinja2 import nodes

    body = ENVIRONMENT.parse(source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts: list[Any] = []
    for child in body[0].nodes:
        if isinstance(child, nodes.TemplateData):
            parts.append(child.data)
            continue
        path = _lookup_path(child)
        if path is None:
            return None
        parts.append(path)
    return FastTemplate(parts)
