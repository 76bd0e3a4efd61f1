"""The legacy dataset generator: shape, determinism, classes and defect rates."""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from lab import dataset
from lab.dataset import CLASS_KEYWORDS, CLASS_REGEX, CLASSES, SPECS

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"openwebui_core": 3000, "openwebui_docs": 2100, "openwebui_functions": 1200,
            "openwebui_pipelines": 900, "openwebui_pain_points": 800, "openwebui_careers": 832}


@pytest.fixture(scope="module")
def legacy() -> list[dataset.CollectionData]:
    return dataset.generate()


def test_collections_counts_spaces_and_settings(legacy: list[dataset.CollectionData]) -> None:
    assert {d.spec.name: len(d) for d in legacy} == EXPECTED
    assert sum(len(d) for d in legacy) == 8832
    spaces = {d.spec.name: d.spec.space for d in legacy}
    assert spaces == {"openwebui_core": "cosine", "openwebui_docs": "cosine", "openwebui_functions": "cosine",
                      "openwebui_pipelines": "cosine", "openwebui_pain_points": "l2", "openwebui_careers": "ip"}
    docs = dataset.SPEC_BY_NAME["openwebui_docs"].configuration()
    assert docs == {"hnsw": {"space": "cosine", "ef_construction": 200, "max_neighbors": 32}}
    assert all(d.spec.metadata()["owner"] == "openwebui" for d in legacy)
    for data in legacy:
        assert data.embeddings.shape == (len(data), 768) and data.embeddings.dtype == np.float32
        assert len(data.documents) == len(data.metadatas) == len(data.classes) == len(data)


def test_ids_are_globally_unique_and_shaped(legacy: list[dataset.CollectionData]) -> None:
    ids = [rid for d in legacy for rid in d.ids]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+-\d{6}", rid) for rid in ids)
    assert legacy[0].ids[42] == "core-000042"


def test_same_seed_same_data_other_seed_other_data(legacy: list[dataset.CollectionData]) -> None:
    again = dataset.generate_collection(SPECS[4])
    first = legacy[4]
    assert again.ids == first.ids and again.documents == first.documents and again.metadatas == first.metadatas
    assert np.array_equal(again.embeddings, first.embeddings)
    other = dataset.generate_collection(SPECS[4], seed=7)
    assert other.documents != first.documents


def test_every_document_matches_its_class_and_no_earlier_class(legacy: list[dataset.CollectionData]) -> None:
    regexes = [re.compile(CLASS_REGEX[c]) for c in CLASSES[:-1]]
    for data in legacy:
        for doc, cls in zip(data.documents, data.classes):
            hits = [i for i, rx in enumerate(regexes) if rx.search(doc)]
            if cls == "corpus":
                assert hits == [], f"{data.spec.name}: corpus document has class words: {doc}"
            else:
                assert hits and hits[0] == CLASSES.index(cls), f"{data.spec.name} {cls}: {doc}"


def test_class_regexes_are_the_lab_routing_rules() -> None:
    rules = yaml.safe_load((REPO / "group_vars/all/routing.yml").read_text())["chroma_routing"]
    for cls in CLASSES[:-1]:
        rule = next(r for r in rules if r["name"] == cls)
        assert re.compile(rule["match"]["document_regex"]).pattern == CLASS_REGEX[cls]


def test_class_mix(legacy: list[dataset.CollectionData]) -> None:
    counts = Counter(c for d in legacy for c in d.classes)
    total = sum(counts.values())
    assert abs(counts["personality"] / total - 0.12) < 0.002
    assert abs(counts["rhetorical"] / total - 0.10) < 0.002
    assert abs(counts["humor"] / total - 0.10) < 0.002


def test_supporting_vocabulary_has_no_class_keyword_inside() -> None:
    keywords = [k for words in CLASS_KEYWORDS.values() for k in words]
    neutral = [w for spec in SPECS for w in spec.topics] + list(dataset.CLASS_SUPPORT["corpus"])
    neutral += list(dataset.CORPUS_VERBS) + [w for t in dataset.CORPUS_TEMPLATES for w in re.findall(r"[a-z]+", t)]
    assert [w for w in neutral if any(k in w.lower() for k in keywords)] == []


def test_metadata_types_and_fixable_defects(legacy: list[dataset.CollectionData]) -> None:
    for data in legacy:
        n = len(data)
        metas = data.metadatas
        assert sum("author" not in m for m in metas) == round(n * 0.03)
        assert sum(m["lang"] not in ("en", "es") for m in metas) == round(n * 0.05)
        assert {m["lang"] for m in metas} <= {"en", "es", "EN", "en-US", "en_us", "ES", "es-ES"}
        assert sum(not 0.0 <= m["score"] <= 1.0 for m in metas) == round(n * 0.02)
        for m in metas:
            assert m["source"] == data.spec.source
            assert isinstance(m["line"], int) and isinstance(m["chunk_index"], int)
            assert isinstance(m["score"], float) and isinstance(m["reviewed"], bool)
            assert m["file"].endswith(".md")
            datetime.strptime(m["created_at"], "%Y-%m-%dT%H:%M:%SZ")


def test_zero_vectors_only_in_cosine_collections(legacy: list[dataset.CollectionData]) -> None:
    total_zero = 0
    for data in legacy:
        zero_rows = np.flatnonzero(~data.embeddings.any(axis=1))
        assert [data.ids[i] for i in zero_rows] == data.zero_vector_ids
        if data.spec.space == "cosine":
            assert len(zero_rows) == round(len(data) * 0.0125)
        else:
            assert len(zero_rows) == 0
        nonzero = np.linalg.norm(np.delete(data.embeddings, zero_rows, axis=0), axis=1)
        assert np.allclose(nonzero, 1.0, atol=1e-5)
        total_zero += len(zero_rows)
    assert 0.008 < total_zero / 8832 < 0.012


def _valid_ratio(variant: str) -> tuple[float, Counter]:
    """Run the real engine Transformer with the lab's routing and schema profile."""
    from chroma_runbook.migrate.transform import Transformer

    routing = yaml.safe_load((REPO / "group_vars/all/routing.yml").read_text())["chroma_routing"]
    schema = yaml.safe_load((REPO / "group_vars/all/schema_profile.yml").read_text())["chroma_schema_profile"]
    transformer = Transformer.from_options(routing=routing, schema=schema)
    issues: Counter = Counter()
    total = bad = 0
    for record in dataset.iter_records(variant):
        out = transformer.transform(record, source_space=dataset.SPEC_BY_NAME[record.source_collection].space)
        total += 1
        if out.issues:
            bad += 1
            issues.update(out.issues)
    return 1 - bad / total, issues


def test_legacy_passes_the_95_percent_gate_and_damaged_fails_it() -> None:
    legacy_ratio, legacy_issues = _valid_ratio("legacy")
    assert 0.985 < legacy_ratio < 0.995
    assert set(legacy_issues) == {"zero_vector"}
    damaged_ratio, damaged_issues = _valid_ratio("damaged")
    assert damaged_ratio < 0.95
    assert damaged_issues["zero_vector"] > legacy_issues["zero_vector"]


def test_scale_multiplies_counts() -> None:
    assert sum(dataset.scaled_count(s, 4) for s in SPECS) == 4 * 8832
    small = dataset.generate(scale=0.1)
    assert {d.spec.name: len(d) for d in small} == {k: round(v * 0.1) for k, v in EXPECTED.items()}


def test_records_for_the_engine() -> None:
    records = list(dataset.iter_records(scale=0.01))
    assert len(records) == sum(round(v * 0.01) for v in EXPECTED.values())
    first = records[0]
    assert first.id == "core-000000" and first.source_collection == "openwebui_core"
    assert first.embedding.dtype == np.float32 and first.embedding.shape == (768,)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"variant": "broken"}, "variant must be one of legacy, damaged"),
    ({"scale": 0}, "scale must be > 0"),
    ({"seed": -1}, "seed must be >= 0"),
])
def test_bad_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataset.generate(**kwargs)
