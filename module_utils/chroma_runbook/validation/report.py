"""validation_report.md and validation_report.json, rendered with Jinja2.

The templates are strings in this module so that they travel with it when Ansible
ships the engine to the managed host (Ansiballz carries .py files only).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from ..io.fsutil import make_private_dir, write_atomic

MARKDOWN_TEMPLATE = """\
# Migration validation report

| | |
|---|---|
| Overall status | **{{ r.overall_status }}** |
| Rollback triggered | {{ "YES" if r.rollback_triggered else "NO" }} |
| Rollback reason | {{ r.rollback_reason or "-" }} |
| Data loss | {{ r.data_loss_percentage }}% (threshold {{ r.thresholds.max_data_loss_pct }}%) |
| Semantic divergence | {{ r.semantic_divergence_percentage }}% (threshold {{ r.thresholds.max_semantic_divergence_pct }}%) |
| Record pass rate | {{ r.record_pass_rate }}% ({{ r.record_pass_rate_status }}) |
| Source | {{ r.source }} ({{ r.source_total }} records in {{ r.source_collections | length }} collections) |
| Target | {{ r.target }} ({{ r.target_total }} records in {{ r.target_collections | length }} collections) |
| Started | {{ r.started_at }} |
| Duration | {{ r.duration_seconds }} s{% if r.timing is defined and r.timing.precopy %} under the freeze{% endif %} |
{% if r.timing is defined %}
| Before the freeze | {% if r.timing.precopy %}{{ r.timing.before_freeze_s }} s (pre-copy, {{ r.timing.records_before_freeze }} records){% else %}- (pre-copy off){% endif %} |
| Under the freeze | {% if r.timing.under_freeze_s is none %}not run yet{% else %}{{ r.timing.under_freeze_s }} s{% if r.timing.records_under_freeze is defined %} (delta, {{ r.timing.records_under_freeze }} records + totals){% endif %}{% endif %} |
{% endif %}

Tests: {{ r.summary.total }}, passed {{ r.summary.passed }}, warnings {{ r.summary.warnings }}, \
failed {{ r.summary.failed }}{% if r.summary.skipped %}, skipped {{ r.summary.skipped }}{% endif %}.
{% if r.rollback_reasons %}

All rollback reasons: {{ r.rollback_reasons | join("; ") }}.
{% endif %}

## Records accounted for

- {{ r.source_total }} source records; {{ r.records.found_on_target }} found on the target.
- {{ r.records.quarantined_in_rejects }} quarantined in the rejects file{% if r.rejects_path %} (`{{ r.rejects_path }}`){% endif %}: \
safely kept, **not** counted as data loss.
{% if not r.rejects_path %}
- {{ r.records.rejected_by_profile_unconfirmed }} missing records are ones the schema profile rejects; \
no rejects file was given to confirm them (not counted as loss).
{% endif %}
- **{{ r.records.lost }} lost** (neither on the target nor in the rejects file): \
data loss {{ r.data_loss_percentage }}%.

## Checks
{% if r.timing is defined %}

When they ran: {{ r.timing.note }}.
{% endif %}

| # | Check | Status | When it ran | Summary |
|---|---|---|---|---|
{% for c in r.checks %}
| {{ loop.index }} | {{ c.title }} | {{ c.status }} | {{ c.ran_text | default("-", true) }} | {{ c.summary | replace("|", "/") }} |
{% endfor %}
{% for c in r.checks %}

### {{ loop.index }}. {{ c.title }}: {{ c.status }}

{{ c.summary }}
{% if c.ran_text | default("") %}

Ran: {{ c.ran_text }}.
{% endif %}
{% for note in c.notes %}

> {{ note }}
{% endfor %}

{% for key, value in c.figures.items() if value is not mapping and value is not sequence or value is string %}
- {{ key }}: {{ value }}
{% endfor %}
{% for key, value in c.figures.items() if value is mapping %}
- {{ key }}:
{% for k2, v2 in value.items() %}
  - {{ k2 }}: {{ v2 }}
{% endfor %}
{% endfor %}
{% for kind, ids in c.offending_ids.items() if ids %}

{{ kind | replace("_", " ") | capitalize }} ({{ c.offending_counts[kind] }}{% if c.offending_counts[kind] > ids | length %}, first {{ ids | length }} shown{% endif %}):
{% for i in ids %}
- `{{ i }}`
{% endfor %}
{% endfor %}
{% endfor %}

## Decision criteria (production runbook, step 5)

| Metric | Pass | Marginal (WARNING) | Fail |
|---|---|---|---|
| Validation pass rate | >{{ r.thresholds.pass_rate_pass_pct }}% | {{ r.thresholds.pass_rate_warn_pct }}-{{ r.thresholds.pass_rate_pass_pct }}% | <{{ r.thresholds.pass_rate_warn_pct }}% |
| Metadata completeness | {{ r.thresholds.metadata_pass_pct }}% | {{ r.thresholds.metadata_warn_pct }}%+ | <{{ r.thresholds.metadata_warn_pct }}% |
| Embedding corruption | 0 NaN | <{{ r.thresholds.nan_warn_pct }}% NaN | >={{ r.thresholds.nan_warn_pct }}% NaN |
| Data loss | 0 | - | >0 (rollback above {{ r.thresholds.max_data_loss_pct }}%) |
| Semantic divergence | <={{ r.thresholds.warn_semantic_divergence_pct }}% | <={{ r.thresholds.max_semantic_divergence_pct }}% | >{{ r.thresholds.max_semantic_divergence_pct }}% |

Recommendation: {% if r.overall_status == "PASSED" %}GO - proceed to cutover.\
{% elif r.overall_status == "WARNING" %}REVIEW - an operator decides before cutover.\
{% else %}NO-GO - roll back ({{ r.rollback_reason }}).{% endif %}
"""

JSON_TEMPLATE = "{{ r | tojson_pretty }}\n"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)
    return env


def render_markdown(report: dict[str, Any]) -> str:
    return _environment().from_string(MARKDOWN_TEMPLATE).render(r=report)


def render_json(report: dict[str, Any]) -> str:
    return _environment().from_string(JSON_TEMPLATE).render(r=report)


def report_paths(report_dir: Path) -> tuple[str, str]:
    """Where the Markdown and JSON reports go."""
    return str(Path(report_dir) / "validation_report.md"), str(Path(report_dir) / "validation_report.json")


def write_reports(report_dir: Path, report: dict[str, Any]) -> tuple[str, str]:
    """Render both reports into ``report_dir``; return their paths."""
    make_private_dir(Path(report_dir))
    md_path, json_path = (Path(p) for p in report_paths(report_dir))
    report = dict(report, report_md=str(md_path), report_json=str(json_path), reports_written=True)
    write_atomic(json_path, render_json(report))
    write_atomic(md_path, render_markdown(report))
    return str(md_path), str(json_path)
