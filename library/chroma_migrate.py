#!/usr/bin/python
"""Ansible module: migrate Chroma collections (thin wrapper over the engine)."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: chroma_migrate
short_description: Export, transform, validate, import and verify Chroma collections, resumably
description:
  - "Runs the five phases of the migration: B(export) every source collection (or those in
    O(collections)) with paged C(get), B(transform) each record (O(routing) picks its target
    collection, O(schema) rewrites its metadata), B(validate) it (embedding present, finite,
    of its target's dimension, not all-zero in cosine collections; required fields, types,
    ranges, allowed values; no duplicate ids), B(import) the valid records in batches, and
    B(verify) counts per target and a sample field by field and vector by vector."
  - "Invalid records are never dropped silently: they are written to O(rejects_path) (JSON
    lines with id, source collection, issue types and the whole original record including
    its embedding) and counted by issue type. When the share of valid records is below
    O(min_valid_ratio) the module fails before the target's collections change and names the
    top issues."
  - "Reading and writing overlap (O(staging=true), the default): each batch is sent as soon as
    validation closes it, into a staging collection C(staging-<hash of run_id>-<target>) on the
    target, never into the target's own collections. Only when the gate has passed, the target
    names were checked and every batch was acknowledged, are the staging collections renamed to
    their target names (a rename keeps the index and the records). If the gate fails they are
    dropped: the target's collections were never touched. With O(staging=false) (and always
    with O(existing=merge)) the whole source is validated before anything is written to the
    target server, which is slower by the length of the validation pass."
  - "Target collections are created with the source collection's configuration (distance
    space, HNSW parameters) and metadata unless the schema profile sets them. A target
    collection that already holds records this run did not write is an error before any
    write, unless O(existing) says V(replace) or V(merge)."
  - "After every batch the target acknowledged, the checkpoint
    C(<checkpoint_dir>/<run_id>.checkpoint.json) is replaced atomically. A run that was
    killed (SIGKILL, power loss) and is started again with the same O(run_id) resumes from
    it and ends with the target exactly as an uninterrupted run leaves it. A second run of
    the same migration while the first still runs is refused, naming the PID that holds the
    lock C(<checkpoint_dir>/migrate.lock)."
  - "Valid records are spooled to C(<checkpoint_dir>/<run_id>.spool/), cut into batches as they
    pass validation (the import reads them from there, so memory stays flat and a resumed run
    sends the same batches). The spool is removed when the run completes."
  - "Check mode is the dry run: phases 1-3 run for real, phase 4 reports what it would write,
    and nothing at all is written to the target (not even an empty collection) nor to
    O(checkpoint_dir). A second run after a completed migration returns C(changed=false)."
version_added: "1.0.0"
author: chroma-runbook
extends_documentation_fragment:
  - chroma_connection.source
  - chroma_connection.target
options:
  source:
    description:
      - Connection dict of the source Chroma server.
      - Writes to the source must be frozen for the whole run (pages are read by offset).
  collections:
    description:
      - Source collections to migrate, in this order. Default is every collection, sorted by name.
    type: list
    elements: str
  routing:
    description:
      - "Ordered rules C({name, target, match: {collection, document_regex, metadata}}); the first
        rule whose every C(match) key matches names the record's target collection. C(collection)
        is an fnmatch glob (or list of globs) on the source collection name, C(document_regex)
        a regular expression searched in the document, C(metadata) maps keys to regular
        expressions searched in C(str(value)). No match keeps the source collection's name."
      - Default (null) keeps every collection's name. Format in docs/CONTRACTS.md.
    type: list
    elements: dict
  schema:
    description:
      - "The target metadata profile: C(fields) (every record) and C(collection_fields) (per
        collection type), each with C(name), C(type) (str, int, float, bool), C(required),
        C(rename_from), C(default), C(normalize), C(range) with C(on_range_error) (clamp or
        reject), C(allowed), C(regex), C(unique), and computed values from a Jinja2
        C(template) (vars id, document, metadata, source_collection, target_collection,
        collection_type, fields) or C(from_document) (regex count, group or rules);
        C(collections) gives each target its C(collection_type), C(configuration) and
        C(metadata); C(keep_unknown_fields)."
      - Null keeps every record's metadata exactly as it is. Format in docs/CONTRACTS.md;
        the lab's profile is C(chroma_schema_profile) in group_vars/all/schema_profile.yml.
    type: dict
  batch_size:
    description:
      - Records per C(add) call (1-5461, Chroma's maximum). Batches are also cut so that the
        request body stays under 32 MiB (Chroma's HTTP limit is 40 MiB), which matters at high
        dimensions.
    type: int
    default: 1000
  run_id:
    description:
      - Names the run's checkpoint, rejects and log files; start again with the same run_id to
        resume. Default is derived from the options (C(migrate-<hash>)), so the same migration
        gets the same run_id.
    type: str
  checkpoint_dir:
    description:
      - Local directory for the checkpoint, the lock, the spool and (by default) the rejects and
        the log. Created when missing (not in check mode).
    type: path
    required: true
  resume:
    description:
      - Resume from this run_id's checkpoint when there is one. V(false) starts over and treats
        collections an earlier attempt created as foreign (see O(existing)).
    type: bool
    default: true
  min_valid_ratio:
    description:
      - The share of valid records (0-1) below which the run fails before writing anything.
    type: float
    default: 0.95
  rejects_path:
    description:
      - JSON-lines file of rejected records. Default C(<checkpoint_dir>/<run_id>.rejects.jsonl).
    type: path
  max_retries:
    description:
      - How many times a batch is sent again after a transient error (connection refused,
        timeout, HTTP 5xx or 429). Permanent errors stop the run at once, naming the collection,
        the batch index and its id range.
    type: int
    default: 5
  retry_delay:
    description:
      - Seconds before the first retry; doubled at each further retry (at most 30 s).
    type: float
    default: 1.0
  existing:
    description:
      - "What to do with a target collection that already holds records this run did not write:
        V(fail) stops before any write naming the collections; V(replace) drops and recreates
        them; V(merge) adds to them (ids already there are kept as they are). An existing
        empty collection with the right distance space is used as it is."
    type: str
    choices: [fail, replace, merge]
    default: fail
  log_path:
    description:
      - JSON-lines log of the run (one event per line). Default C(<checkpoint_dir>/<run_id>.log.jsonl).
    type: path
  verify_sample:
    description:
      - How many records (spread over the source) verification re-reads from the source,
        transforms again and compares with the target field by field and vector by vector.
        V(0) checks counts only.
    type: int
    default: 100
  writers:
    description:
      - How many batches are in flight at once (1-8). The target's index build is the limit, and on
        a busy 2-core host a second writer measured slower (bench/bench_migrate.py), hence 1; try 2
        on a target with idle cores. The checkpoint tracks out-of-order acknowledgements, so
        resume stays exact either way.
    type: int
    default: 1
  staging:
    description:
      - V(true) imports while the source is still being validated, into staging collections
        that are renamed to the target names after the O(min_valid_ratio) gate passed and
        dropped if it failed. V(false) validates the whole source before writing anything to
        the target server. O(existing=merge) always behaves as V(false) (records go straight
        into the existing collection). Changing it between attempts of one O(run_id) is refused.
    type: bool
    default: true
  precopy:
    description:
      - "V(true): the B(pre-copy), run while the apps still write to the source (no freeze). The
        live source is read, transformed and validated, and its valid records are copied into the
        run's staging collections; for every record staged a fingerprint of its content (id,
        document, metadata, embedding bytes) is kept in C(<checkpoint_dir>/<run_id>.fingerprints.sqlite).
        Nothing is gated, promoted or verified, and no rejects file is written: the source is still
        changing. A repeated pre-copy sends only what changed since the last one."
      - "The next invocation of the same O(run_id) with V(false) (under the freeze) is the B(delta):
        it reads the whole frozen source again, adds new ids to staging, deletes and re-adds
        changed records (an upsert would keep metadata keys the source dropped), deletes ids the
        source no longer has, then runs the gate, the promotion and the verification (counts, the
        sample and every record the delta sent) as a plain run. Rejected records go to
        O(rejects_path) from the frozen source. A delta killed at any point and run again ends
        exactly the same. Needs the staged import (O(staging=true), O(existing) fail or replace)."
    type: bool
    default: false
  lock_dir:
    description:
      - "Directory of the per-target locks: the run takes C(<lock_dir>/migrate-<key>.lock), the key derived
        from the target's URL (without credentials) or path, tenant and database, so two runs (two run_ids,
        two checkpoint directories) never write one target at once; the second is refused naming the
        first's PID and host. The runbook passes C(<runs_dir>/locks); C(chroma_run action=lock_status)
        reads the same file. Without it the lock is C(<checkpoint_dir>/migrate.lock)."
    type: path
  check_scope:
    description:
      - "What check mode covers. V(full): the dry run of phases 1-3 described above. V(options): only what can
        be known before reading the source (every option, the routing regexes, the schema profile, the run_id,
        the lock and whether this run's checkpoint can be resumed with these options); nothing is read or
        written, and only C(changed), C(dry_run), C(check_scope), C(run_id), C(phase), C(resumable),
        C(lock_path) and C(import_mode) are returned. The runbook's preflight uses it before the freeze."
      - Ignored outside check mode.
    type: str
    choices: [full, options]
    default: full
  source_snapshot:
    description:
      - A logical snapshot of the frozen source (the run's, taken under the write freeze; see chroma_snapshot).
        Under the freeze the migration then reads the source's records from its files instead of paging
        through the server - the same records, read faster (the embeddings are a float32 matrix on disk).
        Its manifest and every checksum are verified first; a snapshot that fails is an error.
      - Used only when it holds every collection the migration reads (with O(collections) unset, a snapshot of
        the whole source); otherwise the server is read and C(source_read_from) says why.
      - Ignored by the pre-copy (P(precopy=true) reads the live server) and in check mode. The gate's drift check
        proves the live source still equals the snapshot before any app is cut over.
    type: path
attributes:
  check_mode:
    support: full
    details: The dry run; reads the source, writes nothing anywhere.
  diff_mode:
    support: none
notes:
  - "Run it with O(batch_size) at its default unless measurements say otherwise; the run is
    limited by how fast the target builds its HNSW index."
  - "Progress while it runs (for C(async)/C(poll)): read the checkpoint file, a JSON document
    whose fields are listed under RV(checkpoint)."
  - Embeddings are always passed to Chroma; no embedding model is ever loaded.
"""

EXAMPLES = r"""
- name: Dry run (check mode) - phases 1-3 for real, nothing written
  chroma_migrate:
    source: "{{ chroma_source }}"
    target: "{{ chroma_target }}"
    routing: "{{ chroma_routing }}"
    schema: "{{ chroma_schema_profile }}"
    checkpoint_dir: "{{ chroma_runs_dir }}/{{ run_id }}/checkpoint"
    run_id: "{{ run_id }}"
  check_mode: true
  register: dry

- name: Migrate for real, in the background, resumable with the same run_id
  chroma_migrate:
    source: "{{ chroma_source }}"
    target: "{{ chroma_target }}"
    routing: "{{ chroma_routing }}"
    schema: "{{ chroma_schema_profile }}"
    batch_size: 1000
    run_id: "{{ run_id }}"
    checkpoint_dir: "{{ chroma_runs_dir }}/{{ run_id }}/checkpoint"
    rejects_path: "{{ chroma_runs_dir }}/{{ run_id }}/rejects.jsonl"
    log_path: "{{ chroma_runs_dir }}/{{ run_id }}/run.log.jsonl"
    min_valid_ratio: 0.95
  async: 7200
  poll: 0
  register: migrate_job

- name: Show progress from the checkpoint while it runs
  ansible.builtin.slurp:
    src: "{{ chroma_runs_dir }}/{{ run_id }}/checkpoint/{{ run_id }}.checkpoint.json"
  register: ckpt
  # (b64decode | from_json) then shows phase, successful_chunks / total_chunks ...

- name: Copy two collections unchanged (no routing, no schema) into an existing target
  chroma_migrate:
    source: {url: "http://10.0.0.5:8000"}
    target: {path: /srv/chroma-new}
    collections: [docs, faq]
    existing: merge
    checkpoint_dir: /var/lib/chroma-runbook/copy-docs
"""

RETURN = r"""
changed:
  description: Whether this invocation created a collection or wrote a batch.
  returned: always
  type: bool
dry_run:
  description: True in check mode; then nothing was written anywhere.
  returned: always
  type: bool
already_completed:
  description: The run_id's checkpoint says the migration completed; counts were checked again and nothing was written.
  returned: when the run had completed before
  type: bool
run_id:
  description: The run's id (given or derived from the options).
  returned: always
  type: str
  sample: migrate-3f292fc04119
phase:
  description: Last phase reached (export, validated, promote, import, verify, completed).
  returned: always
  type: str
phases:
  description: Per phase counts and durations in seconds.
  returned: always
  type: dict
  contains:
    export:
      description: C(records), C(collections), C(duration_s) (time waiting for pages), C(pass_duration_s) (the whole read-transform-validate pass), C(reused_spool) on resume.
      type: dict
    transform:
      description: C(records), C(duration_s).
      type: dict
    validate:
      description: C(valid), C(rejected), C(duration_s).
      type: dict
    import:
      description: "C(records) and C(batches) written by this invocation, C(skipped_batches) (acknowledged by an
        earlier attempt), C(retries), C(duration_s), C(chunks_per_s), C(alongside_validation) (true when it
        ran while the source was still being validated); in check mode C(would_write_records),
        C(would_write_batches), C(would_create)."
      type: dict
    verify:
      description: C(duration_s), C(sampled), C(passed).
      type: dict
    precopy:
      description: "The pre-copy (O(precopy=true)): C(read), C(added), C(replaced), C(unchanged), C(batches),
        C(duration_s); C(skipped) when the delta had already begun."
      type: dict
    delta:
      description: "The delta under the freeze after a pre-copy: C(read), C(added) (new ids), C(replaced) (changed
        or pending records deleted and added again), C(deleted) (ids gone from the source), C(unchanged),
        C(batches), C(duration_s); C(reused) on a resume after it was applied."
      type: dict
  sample: {"import": {"records": 8700, "batches": 12, "duration_s": 14.2, "chunks_per_s": 612.7}}
total:
  description: Records read from the source.
  returned: always
  type: int
valid:
  description: Records that passed validation.
  returned: always
  type: int
rejected:
  description: Records written to the rejects file.
  returned: always
  type: int
valid_ratio:
  description: valid / total (1.0 for an empty source).
  returned: always
  type: float
imported:
  description: Records the target acknowledged over all attempts of this run.
  returned: always
  type: int
precopy:
  description: With O(precopy=true), what the pre-copy did (as RV(phases.precopy)); in check mode C(would_read).
  returned: when O(precopy=true)
  type: dict
rejects_by_issue:
  description: Issue type to number of records (a record may have several issues).
  returned: always
  type: dict
  sample: {"zero_vector": 92, "missing_required_field:author": 3}
rejects_sample:
  description: The first 20 rejected records (id, source_collection, issues).
  returned: always
  type: list
  elements: dict
by_source:
  description: Source collection to C(read), C(valid), C(rejected).
  returned: always
  type: dict
targets:
  description: "Target collection to C(expected) (valid records routed there), C(imported), C(batches_total),
    C(batches_done), C(sources), C(space), C(state) (created, replaced, merged, adopted), C(preexisting)."
  returned: always
  type: dict
  sample: {"sergio_corpus": {"expected": 6104, "imported": 6104, "space": "cosine", "state": "created"}}
target_actions:
  description: In check mode, what the run would do with each target (create, replace, merge, adopt, ours).
  returned: check mode
  type: dict
created_collections:
  description: Collections this run created (a rollback drops exactly these).
  returned: always
  type: list
  elements: str
replaced_collections:
  description: Pre-existing collections this run dropped and recreated (existing=replace).
  returned: always
  type: list
  elements: str
merged_collections:
  description: Pre-existing collections this run added to (existing=merge).
  returned: always
  type: list
  elements: str
source_read_from:
  description: Where this invocation read the source's records - C(server), or the snapshot (id and path) given
    as O(source_snapshot), with a note when a snapshot was given but not used.
  returned: always
  type: str
  sample: snapshot snap-20260101T020304Z-ab12cd (/runs/r1/snapshot)
verification:
  description: "C(passed), C(counts) (target to expected, count, ok), C(sample) (sampled, mismatches, mismatch_count)
    and a one-line C(summary). The module fails when verification fails."
  returned: when phase 5 ran
  type: dict
throughput_chunks_per_s:
  description: Records written per second during this invocation's import phase.
  returned: always
  type: float
elapsed_s:
  description: Wall-clock seconds of this invocation.
  returned: always
  type: float
peak_rss_mb:
  description: Peak resident memory of the process running the module so far (MiB; in ansible's worker when it
    runs in the controller's process, which adds ansible's own memory); flat in the number of records.
  returned: always
  type: float
attempts:
  description: How many invocations this run_id has had (1 unless resumed).
  returned: always
  type: int
errors:
  description: Errors recorded in the checkpoint (phase, message, time), the last 50.
  returned: always
  type: list
  elements: dict
checkpoint_path:
  description: The checkpoint file (null in check mode).
  returned: always
  type: str
rejects_path:
  description: The rejects file (null in check mode).
  returned: always
  type: str
log_path:
  description: The JSON-lines run log (null in check mode).
  returned: always
  type: str
checkpoint:
  description:
    - "Not returned: the fields of the checkpoint file, for progress displays. C(phase) (export, validated,
      import, verify, completed), C(exported_chunks) (records read so far, updated every 2 s during export),
      C(total_chunks), C(valid_chunks), C(processed_chunks) (rejected + imported),
      C(successful_chunks) (imported), C(failed_chunks) (rejected), C(last_batch_index) (every batch up to
      it is acknowledged; -1 before the first), C(acked_beyond) (batches acknowledged after it, out of order),
      C(total_batches), C(errors), C(targets) (per target C(expected), C(imported), C(batches_total),
      C(batches_done), C(state), C(id)), C(created_collections), C(replaced_collections),
      C(merged_collections), C(adopted_collections), C(source_counts), C(rejects_by_issue), C(run_id),
      C(started_at), C(updated_at), C(pid), C(host), C(attempts), C(paths), and C(result) once completed."
  returned: never
  type: dict
"""

from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible.module_utils.chroma_runbook.io.connection import connection_option
from ansible.module_utils.chroma_runbook.migrate.migration import Migration, MigrationError
from ansible.module_utils.chroma_runbook.migrate.migration_options import MigrationOptions
from ansible.module_utils.chroma_runbook.run.states import Existing
from ansible.module_utils.chroma_runbook.snapshot.frozen_source import SnapshotSource
from ansible.module_utils.chroma_runbook.snapshot.manifest import SnapshotError

ARGUMENT_SPEC = {
    "source": connection_option(),
    "target": connection_option(),
    "collections": {"type": "list", "elements": "str"},
    "routing": {"type": "list", "elements": "dict"},
    "schema": {"type": "dict"},
    "batch_size": {"type": "int", "default": 1000},
    "run_id": {"type": "str"},
    "checkpoint_dir": {"type": "path", "required": True},
    "resume": {"type": "bool", "default": True},
    "min_valid_ratio": {"type": "float", "default": 0.95},
    "rejects_path": {"type": "path"},
    "max_retries": {"type": "int", "default": 5},
    "retry_delay": {"type": "float", "default": 1.0},
    "existing": {"type": "str", "choices": list(Existing.ALL), "default": Existing.FAIL},
    "log_path": {"type": "path"},
    "verify_sample": {"type": "int", "default": 100},
    "writers": {"type": "int", "default": 1},
    "staging": {"type": "bool", "default": True},
    "precopy": {"type": "bool", "default": False},
    "lock_dir": {"type": "path"},
    "check_scope": {"type": "str", "choices": ["full", "options"], "default": "full"},
    "source_snapshot": {"type": "path"},
}


def snapshot_reader(path: Optional[str], params: dict[str, Any], check_mode: bool) -> tuple[Optional[Any], str]:
    """The frozen source's snapshot to read instead of the server, or None and why not (empty: not asked)."""
    if not path or params["precopy"] or check_mode:
        return None, ""
    reader = SnapshotSource(path)  # verified: a snapshot that fails its checksums is an error, not a fallback
    why_not = reader.covers(params["collections"])
    return (None, f"server ({why_not})") if why_not else (reader, reader.label)


def run_module() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = dict(module.params)
    snapshot_path = params.pop("source_snapshot")
    try:
        reader, read_note = snapshot_reader(snapshot_path, params, module.check_mode)
    except (SnapshotError, OSError, ValueError) as exc:
        module.fail_json(msg=f"source_snapshot {snapshot_path} cannot stand for the frozen source: {exc}", changed=False)
    options = MigrationOptions(**params, source_reader=(lambda: reader) if reader is not None else None)
    try:
        migration = Migration(options, check_mode=module.check_mode)
    except ValueError as exc:  # OptionError, ProfileError, ConnectionError_: a bad option, named
        module.fail_json(msg=str(exc), changed=False)
    try:
        result = migration.run()
    except MigrationError as exc:
        result = {k: v for k, v in exc.result.items() if k != "failed"}
        result.setdefault("changed", migration.changed)
        module.fail_json(msg=str(exc), **result)
    except Exception as exc:  # noqa: BLE001 - lock held, connection refused...: say what and stop
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", changed=migration.changed)
    result.pop("failed", None)
    if read_note and reader is None:
        result["source_read_from"] = read_note
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
