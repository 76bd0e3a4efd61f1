"""The validation checks, in report order, looked up by name.

Each check is one module (``check_*.py``) with a ``NAME`` and a function taking the
shared :class:`Context` and returning a :class:`CheckResult` of that name. A ninth
check is one new file plus one line in ``CHECKS``; the runner reads the figures
it needs (data loss, semantic divergence) by name, never by position.
"""
from __future__ import annotations

from typing import Callable, Mapping

from . import (check_citations, check_counts, check_distribution, check_duplicates, check_embeddings,
               check_field_types, check_metadata, check_semantic)
from .context import CheckResult, Context

Check = Callable[[Context], CheckResult]

CHECKS: Mapping[str, Check] = {
    check_counts.NAME: check_counts.check_counts,
    check_embeddings.NAME: check_embeddings.check_embeddings,
    check_metadata.NAME: check_metadata.check_metadata,
    check_semantic.NAME: check_semantic.check_semantic,
    check_distribution.NAME: check_distribution.check_distribution,
    check_duplicates.NAME: check_duplicates.check_duplicates,
    check_field_types.NAME: check_field_types.check_field_types,
    check_citations.NAME: check_citations.check_citations,
}

# the checks whose figures the overall verdict reads
COUNTS = check_counts.NAME
SEMANTIC = check_semantic.NAME


def run_check(name: str, check: Check, ctx: Context) -> CheckResult:
    """Run one registered check; its result must carry the name it is registered under."""
    result = check(ctx)
    if result.name != name:
        raise ValueError(f"validation check registered as {name!r} returned a result named {result.name!r}")
    return result


def figure(results: Mapping[str, CheckResult], check: str, name: str) -> float:
    """One figure of one check's result, found by the check's name."""
    if check not in results:
        raise KeyError(f"validation check {check!r} did not run (checks run: {', '.join(results)})")
    return results[check].figures[name]
