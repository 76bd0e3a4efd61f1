"""Routing rules: parsing errors and first-match semantics."""
from __future__ import annotations

import numpy as np
import pytest

from chroma_runbook.migrate.profile import ProfileError
from chroma_runbook.io.records import Record
from chroma_runbook.migrate.routing import parse_routing


def rec(doc="text", coll="openwebui_core", meta=None) -> Record:
    return Record(id="a", embedding=np.ones(3, np.float32), document=doc, metadata=meta, source_collection=coll)


RULES = [
    {"name": "p", "target": "sergio_personality", "match": {"collection": "openwebui_*", "document_regex": r"(?i)\btrait\b"}},
    {"name": "h", "target": "sergio_humor", "match": {"metadata": {"category": "^humou?r$"}}},
    {"name": "legacy", "target": "legacy_all", "match": {"collection": ["old_a", "old_b"]}},
]


def test_first_matching_rule_wins_and_default_is_same_name() -> None:
    router = parse_routing(RULES)
    assert router.route(rec("A Trait here", meta={"category": "humor"})) == "sergio_personality"
    assert router.route(rec("nothing", meta={"category": "humour"})) == "sergio_humor"
    assert router.route(rec("nothing", meta={"category": "humorous"})) == "openwebui_core"
    assert router.route(rec("trait", coll="other")) == "other"
    assert router.route(rec("x", coll="old_b")) == "legacy_all"


def test_document_none_never_matches_a_document_regex() -> None:
    assert parse_routing(RULES).route(rec(None)) == "openwebui_core"


def test_metadata_regex_needs_the_key() -> None:
    assert parse_routing(RULES).route(rec("x", meta={})) == "openwebui_core"


def test_catch_all_rule_and_possible_targets() -> None:
    router = parse_routing(RULES + [{"target": "rest", "match": {"collection": "openwebui_*"}}])
    assert router.route(rec("plain")) == "rest"
    assert router.possible_targets("openwebui_core") == ["sergio_personality", "sergio_humor", "rest"]
    assert router.possible_targets("zzz") == ["sergio_humor", "zzz"]


def test_none_and_empty_keep_names() -> None:
    assert parse_routing(None).route(rec()) == "openwebui_core"
    assert parse_routing([]).route(rec()) == "openwebui_core"


@pytest.mark.parametrize(
    "raw, needle",
    [
        ("nope", "routing must be a list"),
        ([{"target": "x"}], "routing[0].target must be a Chroma collection name"),
        ([{"target": "good_name", "match": {"document_regex": "("}}], "routing[0] (good_name).match.document_regex: invalid regular expression"),
        ([{"target": "good_name", "match": {"colection": "a"}}], "unknown key(s) ['colection']"),
        ([{"target": "good_name", "when": {}}], "routing[0]: unknown option(s) ['when']"),
        ([{"target": "good_name", "match": {"metadata": {"k": "[a"}}}], "match.metadata.k: invalid regular expression"),
    ],
)
def test_bad_routing_names_the_option(raw, needle) -> None:
    with pytest.raises(ProfileError) as err:
        parse_routing(raw)
    assert needle in str(err.value)
