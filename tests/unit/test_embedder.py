"""The lab's hashing embedder: deterministic, normalised, and meaningful enough for search."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lab import embedder
from tests.conftest import REPO


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_same_text_same_vector_and_unit_norm() -> None:
    a = embedder.embed("The personality of the assistant feels warm.")
    b = embedder.embed("The personality of the assistant feels warm.")
    assert a.dtype == np.float32 and a.shape == (768,)
    assert np.array_equal(a, b)
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-6


def test_independent_of_python_hash_seed() -> None:
    """blake2b, not hash(): another interpreter with another PYTHONHASHSEED gives the same bytes."""
    code = "from lab import embedder; import sys; sys.stdout.write(embedder.embed('joke about the pipeline').tobytes().hex())"
    outputs = set()
    for seed in ("1", "987"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                              check=True)
        outputs.add(done.stdout)
    assert outputs == {embedder.embed("joke about the pipeline").tobytes().hex()}


def test_case_and_punctuation_do_not_matter() -> None:
    assert np.array_equal(embedder.embed("Hello, World!"), embedder.embed("hello world"))
    assert embedder.tokenize("Step 12: Install the EN-us guide") == ["step", "12", "install", "the", "en", "us", "guide"]


def test_shared_words_are_nearer_than_unrelated_text() -> None:
    query = embedder.embed("personality traits openness")
    personality_doc = embedder.embed("Notes on personality and openness: the persona remains calm.")
    humor_doc = embedder.embed("Light joke keeps the chat session silly and funny.")
    assert cosine(query, personality_doc) > 0.3
    assert cosine(query, personality_doc) > cosine(query, humor_doc) + 0.2


def test_word_order_matters_only_through_bigrams() -> None:
    a, b = embedder.embed("restart the worker"), embedder.embed("worker the restart")
    assert not np.array_equal(a, b)
    assert cosine(a, b) > 0.6


def test_batch_equals_single_and_other_dimensions() -> None:
    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    matrix = embedder.embed_many(texts, dim=64)
    assert matrix.shape == (3, 64)
    for row, text in zip(matrix, texts):
        assert np.array_equal(row, embedder.embed(text, dim=64))


def test_text_without_words_is_the_zero_vector() -> None:
    assert not embedder.embed("?! ...").any()


def test_bad_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="dim must be >= 1"):
        embedder.embed("x", dim=0)
