"""Runs the registered checks (registry.CHECKS) and decides PASSED / WARNING / FAILED and
whether to roll back."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..io.clock import utc_stamp
from ..migrate.transform import Transformer
from . import registry
from .context import CheckResult, Context
from .expectation import build_expectation_streaming
from .inputs import load_rejects, load_test_queries
from .report import report_paths, write_reports
from .sides import ParallelReader, finish_side, list_names, read_snapshot_side, start_side
from .thresholds import FAILED, PASSED, ROLLBACK_REASONS, SKIPPED, WARNING, grade_high, merge_thresholds, pct, worst

@dataclass
class ValidationOptions:
    """The module's options, parsed."""

    report_dir: str
    collections: Optional[list[str]] = None
    k: int = 10
    sample_size: int = 50
    seed: int = 42
    thresholds: dict[str, Any] = field(default_factory=dict)
    rejects_path: Optional[str] = None
    test_queries_path: Optional[str] = None
    page_size: int = 1000
    max_listed_ids: int = 20
    workers: int = 4
    source_snapshot: Optional[str] = None
    source_label: str = ""
    target_label: str = ""

    def check(self) -> None:
        """Errors name the option."""
        for name in ("k", "sample_size", "page_size", "max_listed_ids", "workers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        merge_thresholds(self.thresholds)

    def inputs(self) -> tuple[dict[str, Any], Optional[dict[str, list[str]]], list[dict[str, Any]]]:
        """Check the options, then load what every check reads: the thresholds (defaults merged),
        the rejects file's ids per collection (None without one) and the test queries."""
        self.check()
        thresholds = merge_thresholds(self.thresholds)
        rejects = load_rejects(self.rejects_path) if self.rejects_path else None
        queries = load_test_queries(self.test_queries_path) if self.test_queries_path else []
        return thresholds, rejects, queries


def _target_names(transformer: Transformer, source_names: Sequence[str], existing: Sequence[str]) -> list[str]:
    """Target collections records can land in: routing/profile targets, and source names
    (records no rule matches keep their collection name)."""
    names: list[str] = []
    for name in [*transformer.target_collections(), *source_names]:
        if name in existing and name not in names:
            names.append(name)
    return names


def _lap(durations: dict[str, float], name: str, since: float) -> float:
    now = time.monotonic()
    durations[name] = round(now - since, 3)
    return now


def decide(results: list[CheckResult], loss_pct: float, divergence: float, pass_status: str,
           thresholds: dict[str, float]) -> tuple[str, list[str]]:
    """Overall status and the rollback reasons (most important first)."""
    reasons: list[str] = []
    if loss_pct > thresholds["max_data_loss_pct"]:
        reasons.append(ROLLBACK_REASONS["data_loss"])
    if divergence > thresholds["max_semantic_divergence_pct"]:
        reasons.append(ROLLBACK_REASONS["semantic_divergence"])
    for result in results:
        if result.status == FAILED and result.rollback_reason not in reasons:
            reasons.append(result.rollback_reason)
    if pass_status == FAILED:
        reasons.append(ROLLBACK_REASONS["record_pass_rate"])
    status = FAILED if reasons else worst(pass_status, *(r.status for r in results))
    return (PASSED if status == SKIPPED else status), reasons


UNDER_FREEZE = "under the freeze"
BEFORE_FREEZE = "before the freeze"


def record_pass_rate(expectation: Any, results: dict[str, CheckResult],
                     extra_failed: set[tuple[str, str]]) -> float:
    """Share of (target collection, id) records that every check passes; lost ones count as failed."""
    expected = expectation.pairs()
    failed = (set().union(*(r.failed_ids for r in results.values())) | extra_failed) & expected
    lost = set(results[registry.COUNTS].failed_ids)
    denominator = len(expected | lost)
    return round(100.0 - pct(len(failed | lost), denominator), 4) if denominator else 100.0


def _record_pass_rate(ctx: Context, results: dict[str, CheckResult]) -> float:
    """Share of (target collection, id) records of ``ctx`` that every check passes."""
    return record_pass_rate(ctx.expectation, results, set())


def assemble_report(options: ValidationOptions, thresholds: dict[str, float], expectation: Any,
                    source: dict[str, Any], target_counts: dict[str, int], by_name: dict[str, CheckResult],
                    extra_failed: set[tuple[str, str]], started_at: str) -> dict[str, Any]:
    """The verdict and the report's body from every check's result (``extra_failed``: failed records of
    a part that ran earlier, counted in the pass rate)."""
    results = list(by_name.values())
    counts = by_name[registry.COUNTS].figures
    loss_pct = registry.figure(by_name, registry.COUNTS, "data_loss_percentage")
    divergence = registry.figure(by_name, registry.SEMANTIC, "semantic_divergence_percentage")
    pass_rate = record_pass_rate(expectation, by_name, extra_failed)
    pass_status = grade_high(pass_rate, thresholds["pass_rate_pass_pct"], thresholds["pass_rate_warn_pct"],
                             strict_pass=True)
    if pass_rate == 100.0:
        pass_status = PASSED
    overall, reasons = decide(results, loss_pct, divergence, pass_status, thresholds)
    return {
        "overall_status": overall,
        "rollback_triggered": overall == FAILED,
        "rollback_reason": reasons[0] if reasons else None,
        "rollback_reasons": reasons,
        "data_loss_percentage": loss_pct,
        "semantic_divergence_percentage": divergence,
        "record_pass_rate": pass_rate,
        "record_pass_rate_status": pass_status,
        "records": {k: counts[k] for k in ("found_on_target", "quarantined_in_rejects", "lost",
                                           "rejected_by_profile", "rejected_by_profile_unconfirmed")},
        "rejected_by_profile_issue_types": dict(expectation.issue_counts),
        "source": options.source_label,
        "target": options.target_label,
        "source_collections": {n: c.count for n, c in source.items()},
        "target_collections": dict(target_counts),
        "source_total": expectation.source_total,
        "target_total": sum(target_counts.values()),
        "rejects_path": options.rejects_path,
        "source_snapshot": options.source_snapshot,
        "test_queries_path": options.test_queries_path,
        "thresholds": thresholds,
        "checks": [r.as_dict() for r in results],
        "summary": {
            "total": len(results),
            "passed": sum(r.status == PASSED for r in results),
            "warnings": sum(r.status == WARNING for r in results),
            "failed": sum(r.status == FAILED for r in results),
            "skipped": sum(r.status == SKIPPED for r in results),
        },
        "started_at": started_at,
    }


def finish_report(report: dict[str, Any], options: ValidationOptions, write: bool) -> dict[str, Any]:
    """Write the reports (unless ``write`` is false: check mode) and add their paths."""
    if write:
        md_path, json_path = write_reports(Path(options.report_dir), report)
    else:
        md_path, json_path = report_paths(Path(options.report_dir))
    report["report_md"], report["report_json"] = md_path, json_path
    report["reports_written"] = write
    return report


def run_validation(source_client: Any, target_client: Any, transformer: Transformer,
                   options: ValidationOptions, write: bool = True) -> dict[str, Any]:
    """Read both sides once, run the checks, write the reports (unless ``write`` is false:
    check mode); return the result dict."""
    started = time.monotonic()
    started_at = utc_stamp()
    thresholds, rejects, queries = options.inputs()
    durations: dict[str, float] = {}
    clock = time.monotonic()
    snapshot_source = None
    if options.source_snapshot:
        snapshot_source = read_snapshot_side(options.source_snapshot, options.collections, source_client)
        clock = _lap(durations, "read_source_snapshot", clock)
    source_names = list(snapshot_source) if snapshot_source is not None else (
        options.collections or list_names(source_client))
    target_names = _target_names(transformer, source_names, list_names(target_client))
    reader = ParallelReader(options.workers)
    try:
        pending_source = {} if snapshot_source is not None else start_side(
            reader, source_client, source_names, options.page_size, True, "source")
        pending_target = start_side(reader, target_client, target_names, options.page_size, False, "target")
        source: dict[str, Any] = {}

        def arriving() -> Iterator[tuple[str, Any]]:
            if snapshot_source is not None:
                source.update(snapshot_source)
                yield from snapshot_source.items()
                return
            for name, wait in pending_source.items():
                source[name] = wait()
                yield name, source[name]

        # each collection is transformed as soon as its pages are in, while later pages still load
        expectation = build_expectation_streaming(transformer, arriving())
        clock = _lap(durations, "read_source_and_transform", clock)
        target = finish_side(pending_target)
        clock = _lap(durations, "read_target_remaining", clock)
    finally:
        reader.close()
    ctx = Context(source, target, expectation, transformer, thresholds, rejects, options.k,
                  options.sample_size, options.seed, options.max_listed_ids, queries)
    by_name: dict[str, CheckResult] = {}
    for name, check in registry.CHECKS.items():
        by_name[name] = registry.run_check(name, check, ctx)
        by_name[name].ran.append({"when": UNDER_FREEZE, "part": "all records", "records": expectation.expected_total,
                                  "totals": True})
        clock = _lap(durations, name, clock)
    report = assemble_report(options, thresholds, expectation, source, {n: c.count for n, c in target.items()},
                             by_name, set(), started_at)
    report["timing"] = {"mode": "all under the freeze", "precopy": False,
                        "note": "pre-copy off (or no pre-validation): every check ran under the freeze on every record"}
    report["durations"] = durations
    report["duration_seconds"] = round(time.monotonic() - started, 3)
    report["timing"]["under_freeze_s"] = report["duration_seconds"]
    return finish_report(report, options, write)
