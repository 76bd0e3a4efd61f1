"""A deterministic, offline hashing embedder for the lab.

Words are lower-cased and tokenised, each word (and each pair of neighbouring
words, at half weight) is hashed with blake2b into one of ``dim`` buckets with
a sign, and the vector is L2-normalised. Texts sharing words are therefore
near each other under cosine, l2 and inner product alike. The same function
embeds the generator's documents and the demo apps' queries, so search results
make sense without any model download.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

DEFAULT_DIM = 768
BIGRAM_WEIGHT = 0.5
_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words of ``text``."""
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=200_000)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """Stable (bucket, sign) of one feature: independent of PYTHONHASHSEED."""
    digest = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
    sign = 1.0 if (digest >> 63) & 1 else -1.0
    return digest % dim, sign


def _features(text: str) -> list[tuple[str, float]]:
    """Words at weight 1 and neighbouring word pairs at ``BIGRAM_WEIGHT``."""
    words = tokenize(text)
    feats = [(word, 1.0) for word in words]
    feats.extend((f"{a} {b}", BIGRAM_WEIGHT) for a, b in zip(words, words[1:]))
    return feats


def embed_many(texts: Sequence[str] | Iterable[str], dim: int = DEFAULT_DIM) -> np.ndarray:
    """Embed ``texts`` into a float32 matrix of shape (len(texts), dim).

    Rows are L2-normalised; a text without any word gives an all-zero row
    (callers that query with it must refuse it first).
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    texts = list(texts)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for row, text in enumerate(texts):
        for feature, weight in _features(text):
            col, sign = _bucket(feature, dim)
            rows.append(row)
            cols.append(col)
            vals.append(sign * weight)
    matrix = np.zeros((len(texts), dim), dtype=np.float64)
    np.add.at(matrix, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), np.asarray(vals))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix.astype(np.float32)


def embed(text: str, dim: int = DEFAULT_DIM) -> np.ndarray:
    """Embed one text: a float32 vector of length ``dim``, L2-normalised."""
    return embed_many([text], dim)[0]
