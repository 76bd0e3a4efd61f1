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
    """A compiled template; raises jinja2.TemplateSyntaxError on bad syntax."""
    return ENVIRONMENT.from_string(source)
