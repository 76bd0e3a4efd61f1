"""Thresholds of the go/no-go decision (seed defaults) and how a figure is graded.

Seed sources: integration-guide.md (data loss > 5% and semantic divergence > 20%
trigger a rollback) and production-runbook.md step 5 (decision table: pass rate
>99% pass, 95-99% marginal, <95% fail; metadata completeness 100% / 99%+ / <99%;
NaN embeddings 0 / <0.1% / >0.1%; queries all work / 4 of 5 / fewer).
"""
from __future__ import annotations

from typing import Any, Mapping

PASSED, WARNING, FAILED, SKIPPED = "PASSED", "WARNING", "FAILED", "SKIPPED"
SEVERITY = {SKIPPED: 0, PASSED: 0, WARNING: 1, FAILED: 2}

DEFAULTS: dict[str, float] = {
    "max_data_loss_pct": 5.0,              # > -> FAILED, rollback "Data Loss Detected"
    "max_semantic_divergence_pct": 20.0,   # > -> FAILED, rollback "Search Results Diverged"
    "warn_semantic_divergence_pct": 10.0,  # > -> WARNING (seed FAQ: 15% is WARNING)
    "pass_rate_pass_pct": 99.0,            # record pass rate > -> PASSED
    "pass_rate_warn_pct": 95.0,            # >= -> WARNING, below -> FAILED
    "metadata_pass_pct": 100.0,            # completeness >= -> PASSED
    "metadata_warn_pct": 99.0,             # >= -> WARNING, below -> FAILED
    "field_types_pass_pct": 100.0,
    "field_types_warn_pct": 99.0,
    "nan_warn_pct": 0.1,                   # 0 -> PASSED, < -> WARNING, >= -> FAILED
    "embedding_atol": 1e-6,                # |target - source| <= atol + rtol * |source|
    "embedding_rtol": 1e-6,
    "max_altered_vectors": 0,              # more -> FAILED "Embedding Corruption"
    "count_mismatch_warn_collections": 1,  # collections whose count differs: 0 pass, <= this warn
    "min_query_recall": 0.8,               # a test query "works" when its recall@k reaches this
    "query_pass_warn_ratio": 0.8,          # all queries work -> pass, >= this share -> warn
}

ROLLBACK_REASONS: dict[str, str] = {
    "data_loss": "Data Loss Detected",
    "semantic_divergence": "Search Results Diverged",
    "count_verification": "Chunk Count Mismatch",
    "embedding_integrity": "Embedding Corruption",
    "metadata_completeness": "Schema Violation",
    "semantic_search_equivalence": "Search Results Diverged",
    "collection_distribution": "Collection Distribution Mismatch",
    "duplicate_detection": "Duplicate IDs Found",
    "field_type_validation": "Field Type Violation",
    "citation_references": "Citation Reference Errors",
    "record_pass_rate": "Validation Pass Rate Too Low",
}


class ThresholdError(ValueError):
    """A bad ``thresholds`` option; the message names the key."""


def merge_thresholds(user: Mapping[str, Any] | None) -> dict[str, float]:
    """Defaults overlaid by ``user``; unknown keys and non-numbers are errors."""
    merged = dict(DEFAULTS)
    for key, value in (user or {}).items():
        if key not in DEFAULTS:
            raise ThresholdError(f"thresholds.{key} is not a known threshold (known: {sorted(DEFAULTS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ThresholdError(f"thresholds.{key} must be a number >= 0, got {value!r}")
        merged[key] = float(value)
    if merged["pass_rate_warn_pct"] > merged["pass_rate_pass_pct"]:
        raise ThresholdError("thresholds.pass_rate_warn_pct must be <= thresholds.pass_rate_pass_pct")
    if merged["metadata_warn_pct"] > merged["metadata_pass_pct"]:
        raise ThresholdError("thresholds.metadata_warn_pct must be <= thresholds.metadata_pass_pct")
    if merged["warn_semantic_divergence_pct"] > merged["max_semantic_divergence_pct"]:
        raise ThresholdError("thresholds.warn_semantic_divergence_pct must be <= max_semantic_divergence_pct")
    return merged


def grade_high(value_pct: float, pass_at: float, warn_at: float, strict_pass: bool = False) -> str:
    """Higher is better: >= pass_at (or > when ``strict_pass``) PASSED, >= warn_at WARNING."""
    passed = value_pct > pass_at if strict_pass else value_pct >= pass_at
    if passed:
        return PASSED
    return WARNING if value_pct >= warn_at else FAILED


def worst(*statuses: str) -> str:
    """The most severe of ``statuses`` (SKIPPED counts as nothing)."""
    real = [s for s in statuses if s != SKIPPED]
    if not real:
        return SKIPPED
    return max(real, key=lambda s: SEVERITY[s])


def pct(part: float, whole: float) -> float:
    """``part / whole`` in percent (0 when ``whole`` is 0), rounded to 4 places."""
    return round(100.0 * part / whole, 4) if whole else 0.0
