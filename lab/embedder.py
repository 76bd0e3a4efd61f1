"""A deterministic, offline hashing embedder for the lab.

Words are lower-cased and tokenised, common English stop words are dropped,
each remaining word (and each pair of neighbouring words, at half weight) is hashed with blake2b into three of ``dim`` buckets
with signs, and the vector is L2-normalised. Texts sharing words are therefore
near each other under cosine, l2 and inner product alike. The same function
embeds the generator's documents and the demo apps' queries, so search results
make sense without any model download.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable, Sequence

import numpy as np

DEFAULT_DIM = 768
BIGRAM_WEIGHT = 0.5
HASHES_PER_FEATURE = 3
_TOKEN = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have how in is it its may of on or so that the this "
    "to was were when while will with".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words of ``text``."""
    return _TOKEN.findall(text.lower())


def content_words(text: str) -> list[str]:
    """The words that count for the embedding (stop words dropped)."""
    return [word for word in tokenize(text) if word not in STOP_WORDS]


def _hash_table(features: list[str], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable buckets and signs, shape (len(features), HASHES_PER_FEATURE), independent of PYTHONHASHSEED.

    Each feature lands in ``HASHES_PER_FEATURE`` buckets, so an accidental
    collision between two words moves only part of their weight.
    """
    raw = b"".join(hashlib.blake2b(f.encode("utf-8"), digest_size=8 * HASHES_PER_FEATURE).digest()
                   for f in features)
    values = np.frombuffer(raw, dtype="<u8").reshape(len(features), HASHES_PER_FEATURE)
    buckets = (values % np.uint64(dim)).astype(np.int64)
    signs = np.where((values >> np.uint64(63)) & np.uint64(1), 1.0, -1.0)
    return buckets, signs


def _features(text: str) -> list[tuple[str, float]]:
    """Words at weight 1 and neighbouring word pairs at ``BIGRAM_WEIGHT``."""
    words = content_words(text)
    feats = [(word, 1.0) for word in words]
    feats.extend((f"{a} {b}", BIGRAM_WEIGHT) for a, b in zip(words, words[1:]))
    return feats


def embed_many(texts: Sequence[str] | Iterable[str], dim: int = DEFAULT_DIM) -> np.ndarray:
    """Embed ``texts`` into a float32 matrix of shape (len(texts), dim).

    Rows are L2-normalised; a text without any content word gives an all-zero row
    (callers that query with it must refuse it first).
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    texts = list(texts)
    index: dict[str, int] = {}
    rows: list[int] = []
    ids: list[int] = []
    weights: list[float] = []
    for row, text in enumerate(texts):
        for feature, weight in _features(text):
            rows.append(row)
            ids.append(index.setdefault(feature, len(index)))
            weights.append(weight)
    matrix = np.zeros(len(texts) * dim, dtype=np.float64)
    if ids:
        buckets, signs = _hash_table(list(index), dim)
        feature_ids = np.asarray(ids, dtype=np.int64)
        flat = (np.asarray(rows, dtype=np.int64)[:, None] * dim + buckets[feature_ids]).ravel()
        matrix = np.bincount(flat, weights=(signs[feature_ids] * np.asarray(weights)[:, None]).ravel(),
                             minlength=len(texts) * dim)
    matrix = matrix.reshape(len(texts), dim)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix.astype(np.float32)


def embed(text: str, dim: int = DEFAULT_DIM) -> np.ndarray:
    """Embed one text: a float32 vector of length ``dim``, L2-normalised."""
    return embed_many([text], dim)[0]
