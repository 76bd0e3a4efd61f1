"""The Transformer: each profile rule, routing, collection settings, the lab profile."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.lab_vars import group_var

from chroma_runbook.io.records import Record
from chroma_runbook.migrate.transform import Transformer

REPO = Path(__file__).resolve().parents[2]


def rec(meta=None, doc="doc", rid="id-1", coll="src", emb=None) -> Record:
    return Record(id=rid, embedding=np.ones(4, np.float32) if emb is None else emb, document=doc,
                  metadata=meta, source_collection=coll)


def one(field: dict, meta=None, doc="doc", **profile) -> Record:
    t = Transformer.from_options(None, {"fields": [field], **profile})
    return t.transform(rec(meta, doc))


def test_schema_none_keeps_metadata_exactly_and_routing_none_keeps_names() -> None:
    meta = {"a": 1, "b": "x", "c": None, "d": True, "e": 1.5}
    out = Transformer.from_options(None, None).transform(rec(meta))
    assert out.metadata == meta and out.metadata is not meta
    assert out.target_collection == "src" and out.issues == []


def test_rename_from_in_order_and_own_name_first() -> None:
    field = {"name": "author", "type": "str", "rename_from": ["writer", "created_by"]}
    assert one(field, {"created_by": "c", "writer": "w"}).metadata == {"author": "w"}
    assert one(field, {"author": "a", "writer": "w"}).metadata == {"author": "a"}
    assert one(field, {"writer": None, "created_by": "c"}).metadata == {"author": "c"}


def test_default_and_required() -> None:
    assert one({"name": "author", "type": "str", "default": "Unknown"}, {}).metadata == {"author": "Unknown"}
    out = one({"name": "author", "type": "str", "required": True}, {"x": 1})
    assert out.issues == ["missing_required_field:author"]
    assert one({"name": "author", "type": "str"}, {"x": 1}).metadata is None  # optional, absent


def test_unknown_fields_dropped_or_kept() -> None:
    field = {"name": "language", "type": "str", "rename_from": ["lang"]}
    assert one(field, {"lang": "en", "extra": 1}).metadata == {"language": "en"}
    kept = one(field, {"lang": "en", "extra": 1}, keep_unknown_fields=True).metadata
    assert kept == {"extra": 1, "language": "en"}


def test_normalizers_reduce_language_codes() -> None:
    field = {"name": "language", "type": "str", "rename_from": ["lang"],
             "normalize": ["strip", "lower", {"replace": {"castellano": "es"}}, {"regex_sub": ["[-_].*$", ""]}],
             "allowed": ["en", "es"]}
    for raw, want in [("EN", "en"), ("en-US", "en"), ("en_us", "en"), (" ES ", "es"), ("es-ES", "es"), ("Castellano", "es")]:
        assert one(field, {"lang": raw}).metadata == {"language": want}, raw
    assert one(field, {"lang": "fr"}).issues == ["not_allowed:language"]


def test_type_coercion_and_invalid_type() -> None:
    field = {"name": "source_line", "type": "int", "rename_from": ["line"]}
    assert one(field, {"line": "12"}).metadata == {"source_line": 12}
    assert one(field, {"line": "twelve"}).issues == ["invalid_type:source_line"]


def test_clamp_and_reject_ranges() -> None:
    clamp = {"name": "authenticity_score", "type": "float", "rename_from": ["score"], "range": [0, 1], "on_range_error": "clamp"}
    assert one(clamp, {"score": 1.3}).metadata == {"authenticity_score": 1.0}
    assert one(clamp, {"score": -0.2}).metadata == {"authenticity_score": 0.0}
    reject = dict(clamp, on_range_error="reject")
    assert one(reject, {"score": 1.3}).issues == ["out_of_range:authenticity_score"]


def test_template_with_id_fields_and_regex_check() -> None:
    profile = {"fields": [
        {"name": "score", "type": "float", "default": 0.9},
        {"name": "level", "type": "str", "template": "{{ 'high' if fields.score > 0.8 else 'low' }}"},
        {"name": "uri", "type": "str", "template": "if://citation/{{ id }}", "unique": True, "regex": "^if://citation/.+$"},
        {"name": "where", "type": "str", "template": "{{ source_collection }}->{{ target_collection }}"},
    ]}
    t = Transformer.from_options([{"target": "tgt_x"}], profile)
    out = t.transform(rec({}, rid="a b/c"))
    assert out.metadata == {"score": 0.9, "level": "high", "uri": "if://citation/a b/c", "where": "src->tgt_x"}
    assert t.unique_fields() == ["uri"]


def test_template_is_computed_unless_keep_existing() -> None:
    field = {"name": "collection_type", "type": "str", "template": "{{ collection_type }}"}
    t = Transformer.from_options([{"target": "sergio_humor"}], {"collections": {"sergio_humor": {"collection_type": "humor"}}, "fields": [field]})
    assert t.transform(rec({"collection_type": "stale"})).metadata == {"collection_type": "humor"}
    keep = dict(field, keep_existing=True)
    t = Transformer.from_options([{"target": "sergio_humor"}], {"collections": {"sergio_humor": {"collection_type": "humor"}}, "fields": [keep]})
    assert t.transform(rec({"collection_type": "stale"})).metadata == {"collection_type": "stale"}


def test_from_document_count_group_bool_rules() -> None:
    doc = "A joke, then a pun. Openness matters!"
    assert one({"name": "n", "type": "int", "from_document": {"regex": r"\S+", "count": True}}, {}, doc).metadata == {"n": 7}
    assert one({"name": "t", "type": "str", "from_document": {"regex": r"(?i)\b(openness)\b", "group": 1},
                "normalize": ["lower"]}, {}, doc).metadata == {"t": "openness"}
    assert one({"name": "b", "type": "bool", "from_document": {"regex": "pun"}}, {}, doc).metadata == {"b": True}
    rules = {"rules": [{"regex": r"\bsarcasm\b", "value": "sarcasm"}, {"regex": r"\bpun\b", "value": "wordplay"}]}
    assert one({"name": "h", "type": "str", "from_document": rules, "default": "general"}, {}, doc).metadata == {"h": "wordplay"}
    assert one({"name": "h", "type": "str", "from_document": rules, "default": "general"}, {}, "plain").metadata == {"h": "general"}
    assert one({"name": "n", "type": "int", "from_document": {"regex": r"\S+", "count": True}}, {}, None).metadata == {"n": 0}


def test_regex_filters_in_templates() -> None:
    field = {"name": "document_type", "type": "str", "default": "text",
             "template": "{{ metadata.file | regex_search('\\\\.([a-z]+)$', 1) | default('text', true) }}"}
    assert one(field, {"file": "a/b.md"}).metadata == {"document_type": "md"}
    assert one(field, {"file": "a/b"}).metadata == {"document_type": "text"}
    assert one(field, {}).metadata == {"document_type": "text"}


def test_template_error_becomes_an_issue() -> None:
    out = one({"name": "x", "type": "float", "template": "{{ 1 / 0 }}"}, {})
    assert out.issues == ["template_error:x:ZeroDivisionError"]


def test_zero_vector_uses_target_space_from_profile_or_source() -> None:
    zero = np.zeros(4, np.float32)
    t = Transformer.from_options(None, None)
    assert t.transform(rec({"a": 1}, emb=zero), source_space="cosine").issues == ["zero_vector"]
    assert t.transform(rec({"a": 1}, emb=zero), source_space="l2").issues == []
    t = Transformer.from_options([{"target": "tgt"}], {"collections": {"tgt": {"configuration": {"hnsw": {"space": "cosine"}}}}})
    assert t.transform(rec({"a": 1}, emb=zero), source_space="l2").issues == ["zero_vector"]


def test_invalid_metadata_value_is_an_issue_without_schema() -> None:
    out = Transformer.from_options(None, None).transform(rec({"nested": {"a": 1}}))
    assert out.issues == ["invalid_metadata:nested"]


def test_collection_metadata_and_configuration() -> None:
    t = Transformer.from_options(None, {"collections": {
        "fixed": {"configuration": {"hnsw": {"space": "cosine"}}, "metadata": {"description": "d"}},
        "bare": {"inherit_metadata": False, "metadata": {"k": 1}},
    }})
    src_meta = {"owner": "o", "hnsw:space": "l2"}
    src_conf = {"hnsw": {"space": "l2", "ef_construction": 200}}
    assert t.collection_metadata("fixed", src_meta) == {"owner": "o", "description": "d"}
    assert t.collection_configuration("fixed", src_conf) == {"hnsw": {"space": "cosine"}}
    assert t.collection_metadata("bare", src_meta) == {"k": 1}
    assert t.collection_metadata("other", src_meta) == src_meta
    assert t.collection_configuration("other", src_conf) == src_conf
    assert t.target_space("fixed", "l2") == "cosine" and t.target_space("other", "ip") == "ip"


def lab_transformer() -> Transformer:
    routing = group_var("routing.yml", "chroma_routing")
    schema = group_var("schema_profile.yml", "chroma_schema_profile")
    return Transformer.from_options(routing, schema)


LEGACY = {"source": "openwebui/core", "file": "core/api-001.md", "line": 12, "category": "guide", "lang": "en-US",
          "score": 1.3, "created_at": "2024-01-01T00:00:00Z", "chunk_index": 3, "reviewed": True}


def test_lab_profile_personality_record() -> None:
    t = lab_transformer()
    out = t.transform(rec(dict(LEGACY), "The openness of the assistant, for example, stays warm.", rid="core-000001",
                          coll="openwebui_core", emb=np.ones(768, np.float32)), "cosine")
    assert out.issues == []
    assert out.target_collection == "sergio_personality"
    assert out.metadata == {
        "source": "openwebui/core", "source_file": "core/api-001.md", "source_line": 12, "author": "Unknown",
        "collection_type": "personality", "category": "guide", "language": "en", "authenticity_score": 1.0,
        "confidence_level": "high", "disputed": False, "if_citation_uri": "if://citation/core-000001",
        "big_five_trait": "openness", "trait_score": 1.0, "related_frameworks": "big_five",
        "behavioral_examples_count": 1,
    }
    assert set(t.required_fields("sergio_personality")) == set(out.metadata)


def test_lab_profile_each_class_and_required_fields() -> None:
    t = lab_transformer()
    cases = {
        "The metaphor about the api uses irony.": ("sergio_rhetorical", {"device_type": "metaphor", "frequency": 2}),
        "Someone shared a pun on the api and the joke was dry.": ("sergio_humor", {"humor_type": "wordplay", "emotional_context": "ironic"}),
        "Step 3: install the api and check the cache.": ("sergio_corpus", {"document_type": "md", "word_count": 9, "includes_spanish": True}),
    }
    for doc, (target, expect) in cases.items():
        out = t.transform(rec(dict(LEGACY, lang="ES"), doc, coll="openwebui_docs", emb=np.ones(768, np.float32)), "l2")
        assert out.target_collection == target and out.issues == []
        assert {k: out.metadata[k] for k in expect} == expect
        assert set(t.required_fields(target)) == set(out.metadata)
        assert out.metadata["language"] == "es"
    zero = t.transform(rec(dict(LEGACY), "plain words", coll="openwebui_careers", emb=np.zeros(768, np.float32)), "ip")
    assert zero.issues == ["zero_vector"]  # the lab targets are cosine
    assert t.field_rules("sergio_corpus")["authenticity_score"].describe()["range"] == [0.0, 1.0]


def test_lab_profile_english_corpus_is_not_spanish_and_emotion_is_bounded() -> None:
    t = lab_transformer()
    out = t.transform(rec(dict(LEGACY), "Great! Amazing! Love it, great great!", coll="openwebui_core",
                          emb=np.ones(768, np.float32)), "cosine")
    assert out.metadata["includes_spanish"] is False
    assert out.metadata["emotional_intensity"] == 1.0
    out = t.transform(rec(dict(LEGACY), "¿Dónde está el cache? Revisa la api.", coll="openwebui_core",
                          emb=np.ones(768, np.float32)), "cosine")
    assert out.metadata["includes_spanish"] is True and out.metadata["language"] == "en"
