"""Schema profile parsing: every option validated, errors name the field and option."""
from __future__ import annotations

from pathlib import Path

import pytest
from tests.lab_vars import group_var

from chroma_runbook.migrate.profile import ProfileError, parse_profile

REPO = Path(__file__).resolve().parents[2]


def base(**field) -> dict:
    return {"fields": [{"name": "f", "type": "str", **field}]}


def test_none_and_empty_mean_keep_metadata() -> None:
    assert parse_profile(None) is None
    assert parse_profile({}) is None


def test_lab_profile_parses_with_the_seed_fields() -> None:
    raw = group_var("schema_profile.yml", "chroma_schema_profile")
    profile = parse_profile(raw)
    core = [r.name for r in profile.fields]
    assert core == ["source", "source_file", "source_line", "author", "collection_type", "category",
                    "language", "authenticity_score", "confidence_level", "disputed", "if_citation_uri"]
    specific = {k: [r.name for r in v] for k, v in profile.collection_fields.items()}
    assert specific == {
        "personality": ["big_five_trait", "trait_score", "related_frameworks", "behavioral_examples_count"],
        "rhetorical": ["device_type", "frequency", "linguistic_marker", "usage_context"],
        "humor": ["humor_type", "emotional_context", "target_audience", "effectiveness_rating"],
        "corpus": ["document_type", "word_count", "includes_spanish", "emotional_intensity"],
    }
    assert set(profile.collections) == {"sergio_personality", "sergio_rhetorical", "sergio_humor", "sergio_corpus"}


@pytest.mark.parametrize(
    "raw, needle",
    [
        ([], "schema must be a dict"),
        ({"fields": "x"}, "schema.fields must be a list"),
        ({"fields": [{"type": "str"}]}, "schema.fields[0].name must be a non-empty string"),
        (base(type="text"), "schema.fields[0] (f).type must be one of"),
        (base(colour=1), "schema.fields[0] (f): unknown option(s) ['colour']"),
        (base(type="int", range=[2, 1]), "(f).range: min 2 is greater than max 1"),
        (base(range=[0, 1]), "(f).range only applies to int or float"),
        (base(type="float", range=[0]), "(f).range must be [min, max]"),
        (base(on_range_error="wrap"), "(f).on_range_error must be clamp or reject"),
        (base(default=3), "(f).default 3 is not of type str"),
        (base(template="{{ id "), "(f).template does not compile"),
        (base(regex="("), "(f).regex: invalid regular expression"),
        (base(normalize=["title"]), "(f).normalize[0]: unknown normalizer 'title'"),
        (base(normalize=[{"regex_sub": ["a"]}]), "(f).normalize[0].regex_sub must be [pattern, replacement]"),
        (base(from_document={"regex": "a"}), "a plain regex yields a bool"),
        (base(type="int", from_document={"regex": "(a)", "group": 2}), "from_document.group must be 0..1"),
        (base(from_document={"rules": [{"regex": "a"}]}), "from_document.rules[0] needs regex and value"),
        (base(template="x", from_document={"regex": "a", "group": 0}), "either template or from_document"),
        (base(required="yes"), "(f).required must be true or false"),
        (base(allowed=[]), "(f).allowed must be a non-empty list"),
        ({"fields": [{"name": "f", "type": "str"}, {"name": "f", "type": "int"}]}, "field 'f' is defined twice"),
        ({"collections": {"c1": {"collection_type": "x"}}, "collection_fields": {"y": []}},
         "schema.collections.c1.collection_type 'x' has no entry in schema.collection_fields"),
        ({"collections": {"c1": {"configuration": {"hnsw": {"space": "cos"}}}}},
         "schema.collections.c1.configuration.hnsw.space must be cosine, l2 or ip"),
        ({"collections": {"c1": {"dimension": 0}}}, "schema.collections.c1.dimension must be a positive integer"),
        ({"fieldz": []}, "schema: unknown option(s) ['fieldz']"),
        ({"fields": [], "collection_fields": {"t": [{"name": "x", "type": "bool", "from_document": {"regex": "a", "count": True}}]}},
         "schema.collection_fields.t[0] (x).from_document.count needs an int field"),
    ],
)
def test_bad_profile_names_the_field_and_option(raw, needle) -> None:
    with pytest.raises(ProfileError) as err:
        parse_profile(raw)
    assert needle in str(err.value)


def test_collection_fields_may_not_redefine_a_common_field() -> None:
    with pytest.raises(ProfileError, match=r"collection_fields.t: field 'f' is defined twice"):
        parse_profile({"fields": [{"name": "f", "type": "str"}], "collection_fields": {"t": [{"name": "f", "type": "int"}]}})
