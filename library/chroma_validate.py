#!/usr/bin/python
"""Ansible module: the eight validation checks of a migration (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_validate
short_description: Validate a migrated Chroma target against its source (eight checks, go/no-go)
description:
  - "Reads the source and the target once, page by page, and predicts what the target must hold by
    pushing every source record through the same routing and schema profile (the engine's
    Transformer) that chroma_migrate used."
  - "Runs the eight checks of the seed's validator: count verification (data loss), embedding
    integrity (same vectors within tolerance, no NaN, expected dimension), metadata completeness
    (required fields, and values equal to what the profile produces), semantic search equivalence
    (recall@k against exact numpy neighbours on a sample of queries, on both sides; divergence is the
    recall the target lost), collection distribution, duplicate detection (ids in two collections,
    identical documents routed twice), field type validation and citation references."
  - "Records listed in O(rejects_path) are reported as quarantined, not as loss: data loss is the
    share of source records that are neither on the target nor in the rejects file."
  - "Decides C(overall_status) PASSED / WARNING / FAILED with the seed's thresholds (data loss > 5% or
    divergence > 20% fail and trigger a rollback; the runbook's decision table for WARNING) and gives
    C(rollback_reason) with the seed's wording."
  - "It only reads the servers, so it always returns changed=false; it does write
    C(validation_report.md) and C(validation_report.json) (rendered with Jinja2) into O(report_dir),
    except in check mode, where the checks still run but no file is written."
version_added: "1.0.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.source
  - chroma_connection.target
options:
  routing:
    description: The routing rules the migration used (docs/CONTRACTS.md). Default keeps collection names.
    type: list
    elements: dict
  schema:
    description: The schema profile the migration used. Default keeps metadata as it is.
    type: dict
  collections:
    description: Source collections to validate. Default is every source collection.
    type: list
    elements: str
  sample_size:
    description: Queries sampled per collection (source and target) for semantic search equivalence.
    type: int
    default: 50
  k:
    description: Neighbours per query (recall@k).
    type: int
    default: 10
  seed:
    description: Seed of the query sample (the same seed gives the same queries).
    type: int
    default: 42
  thresholds:
    description:
      - "Overrides of the decision thresholds. Keys: C(max_data_loss_pct) (5), C(max_semantic_divergence_pct)
        (20), C(warn_semantic_divergence_pct) (10), C(pass_rate_pass_pct) (99), C(pass_rate_warn_pct) (95),
        C(metadata_pass_pct) (100), C(metadata_warn_pct) (99), C(field_types_pass_pct) (100),
        C(field_types_warn_pct) (99), C(nan_warn_pct) (0.1), C(embedding_atol) (1e-6), C(embedding_rtol)
        (1e-6), C(max_altered_vectors) (0), C(count_mismatch_warn_collections) (1), C(min_query_recall)
        (0.8), C(query_pass_warn_ratio) (0.8). An unknown key is an error."
    type: dict
    default: {}
  report_dir:
    description: Directory for validation_report.md and validation_report.json (created 0700).
    type: path
    required: true
  rejects_path:
    description: The migration's rejects file (JSON lines with C(id)); its records count as quarantined, not lost.
    type: path
  test_queries_path:
    description:
      - "JSON file of test queries: a list (or C({queries: [...]})) of objects with C(embedding) (required;
        queries are never embedded from text), optional C(name), C(collection) (a target collection),
        C(where) (metadata filter) and C(k)."
    type: path
  source_snapshot:
    description:
      - "A logical snapshot of the source taken by chroma_snapshot while writes were frozen (runbook
        step 2). The source's records are read from its files (verified by SHA-256 first) instead of
        being paged through the server: much faster. The source server is still queried for the
        semantic search baseline."
    type: path
  page_size:
    description: Records read per request.
    type: int
    default: 1000
  workers:
    description: Concurrent page requests while reading both servers.
    type: int
    default: 4
  max_listed_ids:
    description: Offending ids listed per kind in each check (the counts are always complete).
    type: int
    default: 20
  phase:
    description:
      - "V(full): every check on every record (pre-copy off, or no pre-validation)."
      - "V(precopy): before the freeze, after chroma_migrate's pre-copy, while the apps still write. The
        source is read live; a record whose content fingerprint equals the one the pre-copy kept for what
        it staged is checked in the run's staging collections (embedding integrity, metadata completeness,
        field types); a record changed since the pre-copy read it, or not read, is left to the freeze,
        never a failure. The records checked and their fingerprints go to C(<report_dir>/prevalidation.json).
        The totals are not run. On FAILED the failing records are marked to be sent again by the next pass."
      - "V(freeze): under the freeze, after the delta. The record checks run on every record that was not
        checked before the freeze with the content it has now, or that the delta sent
        (C(<checkpoint_dir>/<run_id>.delta_ids.json)); counts, distribution, duplicates, citation references
        and semantic search run over the whole collections (read without embeddings). The report merges
        both parts and says, per check, when it ran (RV(checks[].ran)) and how long each part took
        (RV(timing)). Without a pre-validation or a delta file this is V(full)."
    type: str
    choices: [full, precopy, freeze]
    default: full
  run_id:
    description: The migration's run id (needed by O(phase=precopy) and O(phase=freeze)).
    type: str
  checkpoint_dir:
    description: The migration's checkpoint directory (fingerprints, delta ids); needed by O(phase=precopy) and O(phase=freeze).
    type: path
  expected_fingerprint:
    description:
      - "The source's fingerprint taken with the snapshot (chroma_snapshot C(fingerprint), chroma_info C(fingerprint)).
        When given (and O(phase) is not C(precopy)), the gate's drift check runs beside the validation: a forked
        child process (started before the module opens any connection) fingerprints the live O(source) (the collections of the fingerprint's C(scope)) while the checks run, and
        C(drift_check) says whether anything was created, dropped or written since the snapshot."
      - "The validation itself still reads O(source_snapshot) when given; only the drift check reads the live server."
    type: dict
  drift_timeout_s:
    description: Seconds the module waits, after the checks, for the drift check to finish; past it C(drift_check.checked) is false.
    type: float
    default: 600
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Validate the migration (runbook step 4)
  chroma_validate:
    source: "{{ chroma_source }}"
    target: "{{ chroma_target }}"
    routing: "{{ chroma_routing }}"
    schema: "{{ chroma_schema_profile }}"
    rejects_path: "{{ run_dir }}/rejects.jsonl"
    source_snapshot: "{{ run_dir }}/snapshot"
    report_dir: "{{ run_dir }}/reports"
    expected_fingerprint: "{{ snapshot.fingerprint }}"  # the drift check, beside the checks
  register: validation

- name: No-go - the source changed since the snapshot
  ansible.builtin.fail:
    msg: "written since the snapshot: {{ validation.drift_check.drift | map(attribute='collection') | join(', ') }}"
  when: validation.drift_check.drift | default([]) | length > 0

- name: Go / no-go
  ansible.builtin.fail:
    msg: "Validation {{ validation.overall_status }}: {{ validation.rollback_reason }} (see {{ validation.report_md }})"
  when: validation.rollback_triggered
"""

RETURN = r"""
overall_status:
  description: PASSED, WARNING or FAILED.
  returned: always
  type: str
  sample: PASSED
rollback_triggered:
  description: True when the status is FAILED.
  returned: always
  type: bool
rollback_reason:
  description: The most important reason (seed wording, e.g. "Data Loss Detected", "Search Results Diverged").
  returned: always
  type: str
rollback_reasons:
  description: Every reason, most important first.
  returned: always
  type: list
  elements: str
data_loss_percentage:
  description: Source records neither on the target nor in the rejects file, in percent of the source.
  returned: always
  type: float
semantic_divergence_percentage:
  description: Share of the source's recall@k that the target lost, in percent.
  returned: always
  type: float
record_pass_rate:
  description: Expected records that pass every per-record check, in percent.
  returned: always
  type: float
records:
  description: Counts of found_on_target, quarantined_in_rejects, lost, rejected_by_profile, rejected_by_profile_unconfirmed.
  returned: always
  type: dict
checks:
  description: "One entry per check with name, title, status, summary, figures, offending_ids (truncated), offending_counts,
    notes, C(ran) (when it ran: before or under the freeze, which part, how many records) and C(ran_text)."
  returned: always
  type: list
  elements: dict
summary:
  description: total, passed, warnings, failed, skipped.
  returned: always
  type: dict
report_md:
  description: Path of validation_report.md.
  returned: always
  type: str
report_json:
  description: Path of validation_report.json.
  returned: always
  type: str
reports_written:
  description: False in check mode.
  returned: always
  type: bool
drift_check:
  description:
    - "The drift check run beside the validation: C(checked) (true only when the live source was fingerprinted in
      full), C(drift) (collections created, dropped or written since the snapshot: C(collection), C(what),
      C(expected), C(actual)), C(expected_sha256) (the O(expected_fingerprint) it compared with), C(source),
      C(started_at), C(ended_at), C(duration_s), or C(error) when it could not
      finish (the gate then runs its own)."
  returned: when expected_fingerprint is given and phase is not precopy
  type: dict
timing:
  description: "Which part ran when: C(precopy) (bool), C(before_freeze_s), C(under_freeze_s),
    C(records_before_freeze), C(records_under_freeze), C(note)."
  returned: always
  type: dict
duration_seconds:
  description: Time the validation took (with O(phase=freeze), the part under the freeze).
  returned: always
  type: float
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.io.connection import ConnectionSpec, connect, connection_option
from ansible.module_utils.chroma_runbook.io.drift_watch import BackgroundDriftCheck
from ansible.module_utils.chroma_runbook.io.source import SourceRefused, open_source
from ansible.module_utils.chroma_runbook.migrate.transform import Transformer
from ansible.module_utils.chroma_runbook.validation.phased import run_freeze_validation, run_prevalidation
from ansible.module_utils.chroma_runbook.validation.runner import ValidationOptions, run_validation

ARGUMENT_SPEC = {
    "source": connection_option(),
    "target": connection_option(),
    "routing": {"type": "list", "elements": "dict"},
    "schema": {"type": "dict"},
    "collections": {"type": "list", "elements": "str"},
    "sample_size": {"type": "int", "default": 50},
    "k": {"type": "int", "default": 10},
    "seed": {"type": "int", "default": 42},
    "thresholds": {"type": "dict", "default": {}},
    "report_dir": {"type": "path", "required": True},
    "rejects_path": {"type": "path"},
    "test_queries_path": {"type": "path"},
    "source_snapshot": {"type": "path"},
    "page_size": {"type": "int", "default": 1000},
    "workers": {"type": "int", "default": 4},
    "max_listed_ids": {"type": "int", "default": 20},
    "phase": {"type": "str", "default": "full", "choices": ["full", "precopy", "freeze"]},
    "run_id": {"type": "str"},
    "checkpoint_dir": {"type": "path"},
    "expected_fingerprint": {"type": "dict"},
    "drift_timeout_s": {"type": "float", "default": 600.0},
}


def _validate(p: dict[str, Any], source: Any, target: Any, transformer: Transformer, options: ValidationOptions,
              write: bool) -> dict[str, Any]:
    """The part of the validation ``phase`` asks for."""
    if p["phase"] == "precopy":
        return run_prevalidation(source, target, transformer, options, p["run_id"], p["checkpoint_dir"], write)
    if p["phase"] == "freeze":
        return run_freeze_validation(source, target, transformer, options, p["run_id"], p["checkpoint_dir"], write)
    return run_validation(source, target, transformer, options, write=write)


def run_module() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("phase", "precopy", ("run_id", "checkpoint_dir")),
                                        ("phase", "freeze", ("run_id", "checkpoint_dir"))])
    p = module.params
    try:
        source_spec = ConnectionSpec.from_dict(p["source"], "source")
        target_spec = ConnectionSpec.from_dict(p["target"], "target")
        transformer = Transformer.from_options(routing=p["routing"], schema=p["schema"])
        options = ValidationOptions(
            report_dir=p["report_dir"], collections=p["collections"], k=p["k"], sample_size=p["sample_size"],
            seed=p["seed"], thresholds=p["thresholds"], rejects_path=p["rejects_path"],
            test_queries_path=p["test_queries_path"], page_size=p["page_size"], workers=p["workers"],
            max_listed_ids=p["max_listed_ids"], source_snapshot=p["source_snapshot"],
            source_label=source_spec.describe(),
            target_label=target_spec.describe(),
        )
        options.check()
    except ValueError as exc:  # ConnectionError_, ProfileError, ThresholdError: the option is named
        module.fail_json(msg=str(exc))
    # Forked before this module opens any connection (the child must share no socket with it).
    watch = None
    if p["expected_fingerprint"] and p["phase"] != "precopy":
        watch = BackgroundDriftCheck(lambda: open_source(source_spec), p["expected_fingerprint"],
                                     source_spec.describe()).start()
    try:
        report = _run(module, p, source_spec, target_spec, transformer, options)
    except BaseException:  # fail_json's exit too: the child is stopped, not left reading
        if watch is not None:
            watch.cancel()
        raise
    if watch is not None:
        report["drift_check"] = watch.result(p["drift_timeout_s"])
    module.exit_json(changed=False, **report)


def _run(module: AnsibleModule, p: dict[str, Any], source_spec: ConnectionSpec, target_spec: ConnectionSpec,
         transformer: Transformer, options: ValidationOptions) -> dict[str, Any]:
    """The validation, each failure said with the servers it concerns (fail_json)."""
    try:
        return _validate(p, open_source(source_spec), connect(target_spec), transformer, options,
                         not module.check_mode)
    except SourceRefused as exc:  # unsupported version, old persist directory: said as it is
        module.fail_json(msg=str(exc))
    except ValueError as exc:  # bad input file, missing source collection, moving data
        module.fail_json(msg=f"validation could not run: {exc}")
    except Exception as exc:  # noqa: BLE001 - client errors: name the servers
        module.fail_json(msg=f"validation of {target_spec.describe()} against {source_spec.describe()} failed: "
                             f"{type(exc).__name__}: {exc}")
    raise AssertionError("fail_json returned")  # pragma: no cover


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
