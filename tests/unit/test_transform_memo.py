"""The transform memo: an unchanged record gets exactly what the Transformer gives; anything else is transformed."""
from __future__ import annotations

import dataclasses
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from tests.lab_vars import group_var

from chroma_runbook.io.fingerprint import record_digest
from chroma_runbook.io.records import Record
from chroma_runbook.migrate.record_checks import RecordValidator
from chroma_runbook.migrate.transform import Transformer
from chroma_runbook.migrate.transform_memo import (
    MemoTransformer,
    TransformMemo,
    memo_signature,
    memo_transformer,
)
from lab import dataset

SPACES = {spec.name: spec.space for spec in dataset.SPECS}


def lab_transformer() -> Transformer:
    return Transformer.from_options(group_var("routing.yml", "chroma_routing"),
                                    group_var("schema_profile.yml", "chroma_schema_profile"))


def as_tuple(out: Record) -> tuple:
    emb = None if out.embedding is None else out.embedding.tobytes()
    return (out.id, out.document, out.metadata, emb, out.source_collection, out.target_collection, out.issues)


def rec(rid: str = "a-1", meta: dict | None = None, doc: str | None = "one joke", emb: list[float] | None = None,
        coll: str = "openwebui_core") -> Record:
    return Record(id=rid, embedding=np.asarray(emb or [0.1, 0.2, 0.3], np.float32), document=doc,
                  metadata=meta if meta is not None else {"score": 0.9, "lang": "en"}, source_collection=coll)


def test_the_lab_dataset_through_the_memo_is_exactly_the_transform(tmp_path: Path) -> None:
    """Every lab record (the real profile, rejects included): first pass stores, second pass reuses;
    both passes give what a plain Transformer gives, and the cross-record checks still see every record."""
    plain = lab_transformer()
    records = list(dataset.iter_records(scale=0.25))
    want = [as_tuple(plain.transform(r, SPACES[r.source_collection])) for r in records]
    assert any(w[-1] for w in want) and any(not w[-1] for w in want)  # rejects and valid ones

    path = str(tmp_path / "memo.sqlite")
    for pass_no in (1, 2):
        memo = memo_transformer(lab_transformer(), path)
        assert memo is not None
        got = []
        for i, r in enumerate(records):
            if i % 700 == 0:  # as the scan does per page: rows read ahead (some pages span two collections)
                memo.prefetch(r.source_collection, [x.id for x in records[i:i + 700]])
            got.append(as_tuple(memo.transform(r, SPACES[r.source_collection])))
        memo.close()
        assert got == want, f"pass {pass_no}"
        reused = memo.stats()["reused"]
        assert reused == (0 if pass_no == 1 else len(records)), memo.stats()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_changed_record_is_transformed_again(tmp_path: Path) -> None:
    path = str(tmp_path / "memo.sqlite")
    first = memo_transformer(lab_transformer(), path)
    base = rec()
    first.transform(base, "cosine")
    first.close()
    changes = {
        "document": dataclasses.replace(base, document="one pun"),
        "document to None": dataclasses.replace(base, document=None),
        "a metadata value": dataclasses.replace(base, metadata={"score": 0.5, "lang": "en"}),
        "a key dropped": dataclasses.replace(base, metadata={"score": 0.9}),
        "an int for a float": dataclasses.replace(base, metadata={"score": 1, "lang": "en"}),
        "True for 1": dataclasses.replace(base, metadata={"score": 0.9, "lang": "en", "x": True}),
        "NaN for None": dataclasses.replace(base, metadata={"score": math.nan, "lang": "en"}),
        "an embedding value": dataclasses.replace(base, embedding=np.asarray([0.1, 0.2, 0.4], np.float32)),
        "the dimension": dataclasses.replace(base, embedding=np.asarray([0.1, 0.2, 0.3, 0.0], np.float32)),
        "the source collection": dataclasses.replace(base, source_collection="openwebui_docs"),
    }
    plain = lab_transformer()
    for what, changed in changes.items():
        again = memo_transformer(lab_transformer(), path)
        out = again.transform(changed, "cosine")
        again.close()
        assert again.stats() == {"reused": 0, "transformed": 1}, what
        assert as_tuple(out) == as_tuple(plain.transform(changed, "cosine")), what
    # the distance space is part of the key: a zero vector passes in l2, not in cosine (no profile)
    zero = dataclasses.replace(base, id="z-1", embedding=np.zeros(3, np.float32))
    bare = Transformer.from_options(None, None)
    memo = memo_transformer(Transformer.from_options(None, None), str(tmp_path / "bare.sqlite"))
    in_l2, in_cosine = memo.transform(zero, "l2"), memo.transform(zero, "cosine")
    assert as_tuple(in_l2) == as_tuple(bare.transform(zero, "l2")) and not in_l2.issues
    assert as_tuple(in_cosine) == as_tuple(bare.transform(zero, "cosine")) and in_cosine.issues
    assert memo.stats() == {"reused": 0, "transformed": 2}
    memo.close()


def test_other_options_empty_the_memo(tmp_path: Path) -> None:
    path = str(tmp_path / "memo.sqlite")
    memo = memo_transformer(lab_transformer(), path)
    memo.transform(rec(), "cosine")
    memo.close()
    other_profile = group_var("schema_profile.yml", "chroma_schema_profile") | {"keep_unknown_fields": True}
    other = memo_transformer(Transformer.from_options(group_var("routing.yml", "chroma_routing"), other_profile), path)
    assert other.memo.size() == 0
    out = other.transform(rec(meta={"score": 0.9, "lang": "en", "extra": 1}), "cosine")
    assert out.metadata["extra"] == 1 and other.stats()["transformed"] == 1
    other.close()
    assert memo_signature(lab_transformer()) != memo_signature(
        Transformer.from_options(group_var("routing.yml", "chroma_routing"), other_profile))
    # a transformer built in code has no known options: nothing is memoised
    built = Transformer(lab_transformer().router, lab_transformer().profile)
    assert memo_transformer(built, path) is None


def test_an_output_json_would_change_is_not_stored(tmp_path: Path) -> None:
    memo = TransformMemo(str(tmp_path / "memo.sqlite"), "sig")
    record = rec(meta={"x": 1})
    nan_out = dataclasses.replace(record, metadata={"x": math.nan}, target_collection="t")
    big_out = dataclasses.replace(record, metadata={"x": 2 ** 70}, target_collection="t")
    surrogate_out = dataclasses.replace(record, metadata={"x": "\ud800"}, target_collection="t")
    digest = record_digest(record)
    assert not memo.remember(record, "l2", digest, nan_out)
    assert not memo.remember(record, "l2", digest, big_out)
    assert not memo.remember(record, "l2", digest, surrogate_out)
    memo.flush()
    assert memo.lookup(record, "l2", digest) is None
    memo.close()


def test_the_cross_record_checks_still_see_reused_records(tmp_path: Path) -> None:
    """A record reused from the memo is still a duplicate when its id was already placed in that target."""
    path = str(tmp_path / "memo.sqlite")
    first, second = rec(rid="same", coll="openwebui_core"), rec(rid="same", coll="openwebui_docs")
    plain = lab_transformer()

    def pass_issues(transformer: Transformer | MemoTransformer) -> list[list[str]]:
        validator = RecordValidator(unique_fields=plain.unique_fields())
        return [validator.validate(transformer.transform(r, "cosine")) for r in (first, second)]

    want = pass_issues(plain)
    for _ in range(2):
        memo = memo_transformer(lab_transformer(), path)
        assert pass_issues(memo) == want
        memo.close()
    assert want[0] == [] and "duplicate_id" in want[1]


@pytest.mark.parametrize("meta", [None, {}, {"a": [1, 2]}, {"a": "ü"}])
def test_the_record_digest_tells_apart_what_transform_tells_apart(meta: dict | None) -> None:
    record = rec(meta=meta)
    assert record_digest(record) == record_digest(dataclasses.replace(record))
    assert record_digest(record) != record_digest(dataclasses.replace(record, id="other"))
    assert record_digest(record) != record_digest(dataclasses.replace(record, embedding=None))
    empty = dataclasses.replace(record, embedding=np.zeros(0, dtype=np.float32))
    assert record_digest(empty) != record_digest(dataclasses.replace(record, embedding=None))


@pytest.mark.parametrize("one, other", [
    ({"a": None}, {"a": math.nan}), ({"a": 1}, {"a": 1.0}), ({"a": True}, {"a": 1}),
    ({"a": math.inf}, {"a": None}), ({"a": 2 ** 70}, {"a": 2 ** 70 + 1}), ({"a": "\ud800"}, {"a": "\ud801"}),
    ({"a": [1, 2]}, {"a": [2, 1]}), (None, {}),
])
def test_the_record_digest_keeps_json_types_apart(one: dict | None, other: dict | None) -> None:
    base = rec()
    assert record_digest(dataclasses.replace(base, metadata=one)) != record_digest(dataclasses.replace(base, metadata=other))
    assert record_digest(dataclasses.replace(base, metadata=one)) == record_digest(dataclasses.replace(base, metadata=one))


def test_the_transforms_own_code_is_part_of_the_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    from chroma_runbook.migrate import transform_memo

    text = transform_memo._code_text()
    for needle in ("class Transformer", "class RecordValidator", "def parse_profile", "def compile_template"):
        assert needle in text, needle
    before = memo_signature(lab_transformer())
    monkeypatch.setattr(transform_memo, "_code_text", lambda: text + "\n# another version")
    assert memo_signature(lab_transformer()) != before


def test_a_reused_record_brings_its_staged_fingerprint_without_hashing_again(tmp_path: Path, monkeypatch) -> None:
    """The memo keeps each output's staged fingerprint (what the pre-copy's store and the validation compare),
    so under the freeze an unchanged record is not hashed again: the same bytes, and no call."""
    from chroma_runbook.migrate import precopy

    path = str(tmp_path / "memo.sqlite")
    records = [rec(f"a-{i}", meta={"score": i / 10, "lang": "en"}) for i in range(5)]
    first = memo_transformer(lab_transformer(), path)
    want = []
    for r in records:
        out = first.transform(r, "cosine")
        want.append(precopy.record_fingerprint(out.id, out.document, out.metadata, out.embedding))
        assert out.staged_digest == want[-1]  # a transformed record gets it once, for the sink and the memo
    first.close()

    def hashed_again(*_args, **_kwargs):
        raise AssertionError("a record reused from the memo was hashed again")

    monkeypatch.setattr(precopy, "record_fingerprint", hashed_again)
    second = memo_transformer(lab_transformer(), path)
    got = [precopy.staged_fingerprint(second.transform(r, "cosine")) for r in records]
    assert got == want and second.stats() == {"reused": 5, "transformed": 0}
    second.close()


def test_a_record_read_with_its_digest_is_not_hashed_again(tmp_path: Path, monkeypatch) -> None:
    """A record that comes with its source digest (a snapshot keeps them) is looked up by it."""
    from chroma_runbook.migrate import transform_memo

    path = str(tmp_path / "memo.sqlite")
    record = rec()
    first = memo_transformer(lab_transformer(), path)
    first.transform(record, "cosine")
    first.close()
    monkeypatch.setattr(transform_memo, "record_digest", lambda _r: pytest.fail("hashed again"))
    second = memo_transformer(lab_transformer(), path)
    carried = dataclasses.replace(record, source_digest=record_digest(record))
    assert second.transform(carried, "cosine").metadata == first.transformer.transform(record, "cosine").metadata
    assert second.stats() == {"reused": 1, "transformed": 0}
    second.close()


def test_a_memo_of_an_older_format_is_started_anew(tmp_path: Path) -> None:
    """A memo file written by the format before (no staged fingerprints) is emptied and its table made anew."""
    import sqlite3

    path = tmp_path / "memo.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE about (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    old.execute("INSERT INTO about VALUES ('signature', 'format 2')")
    old.execute("CREATE TABLE memo (source TEXT NOT NULL, id TEXT NOT NULL, digest BLOB NOT NULL, space TEXT, "
                "target TEXT NOT NULL, metadata BLOB, issues BLOB NOT NULL, PRIMARY KEY (source, id)) WITHOUT ROWID")
    old.execute("INSERT INTO memo VALUES ('openwebui_core', 'a-1', x'00', 'cosine', 't', NULL, '[]')")
    old.commit()
    old.close()
    memo = memo_transformer(lab_transformer(), str(path))
    assert memo.memo.size() == 0
    memo.transform(rec(), "cosine")
    memo.close()
    again = memo_transformer(lab_transformer(), str(path))
    again.transform(rec(), "cosine")
    assert again.stats() == {"reused": 1, "transformed": 0}
    again.close()
