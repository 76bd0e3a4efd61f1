"""The deterministic legacy dataset of the lab (Open WebUI's chunks before the migration).

Six ``openwebui_*`` collections (3000/2100/1200/900/800/832 = 9,832 chunks at
scale 1), 768-dim vectors from :mod:`lab.embedder`, legacy metadata with the
realistic defects the schema profile must fix (missing author, odd language
codes, scores outside [0, 1]) and the ones the migration must reject (all-zero
vectors in cosine collections). Every document belongs to one class whose
keywords it contains: personality, rhetorical, humor, or corpus (none of the
other classes' keywords).

Variants: ``legacy`` (about 1% rejects, the 95% gate passes) and ``damaged``
(10% zero vectors in cosine collections, so fewer than 95% of records are valid).

CLI::

    python -m lab.dataset --url http://127.0.0.1:8001 [--variant legacy|damaged] [--scale 1] [--seed 42]
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Optional

import numpy as np

from . import embedder

DIM = embedder.DEFAULT_DIM
DEFAULT_SEED = 42
VARIANTS = ("legacy", "damaged")
CLASSES = ("personality", "rhetorical", "humor", "corpus")

# The routing contract (docs/CONTRACTS.md): document words decide the class, rules
# are applied in this order, corpus documents contain none of these words.
CLASS_KEYWORDS: dict[str, tuple[str, ...]] = {
    "personality": ("personality", "trait", "openness", "conscientiousness", "extraversion",
                    "agreeableness", "neuroticism"),
    "rhetorical": ("rhetoric", "rhetorical", "metaphor", "anaphora", "analogy", "irony", "hyperbole"),
    "humor": ("joke", "jokes", "humor", "funny", "pun", "sarcasm", "punchline"),
}
CLASS_REGEX: dict[str, str] = {
    name: r"(?i)\b(" + "|".join(words) + r")\b" for name, words in CLASS_KEYWORDS.items()
}
CLASS_SHARE = {"personality": 0.12, "rhetorical": 0.10, "humor": 0.10}

# Words that give each class (and each collection's topic) its own neighbourhood.
CLASS_SUPPORT: dict[str, tuple[str, ...]] = {
    "personality": ("warm", "curious", "calm", "organised", "outgoing", "steady", "empathic",
                    "reliable", "sociable", "thoughtful"),
    "rhetorical": ("vivid", "persuasive", "memorable", "layered", "elegant", "striking",
                   "balanced", "eloquent", "figurative", "rhetorical"),
    "humor": ("witty", "playful", "silly", "absurd", "cheeky", "lighthearted", "goofy",
              "deadpan", "funny", "dry"),
    "corpus": ("stable", "configured", "enabled", "slow", "ready", "cached", "updated",
               "missing", "local", "remote"),
}
CLASS_NOUNS: dict[str, tuple[str, ...]] = {
    "personality": CLASS_KEYWORDS["personality"],
    "rhetorical": ("rhetoric", "metaphor", "anaphora", "analogy", "irony", "hyperbole"),
    "humor": ("joke", "jokes", "humor", "pun", "sarcasm", "punchline"),
}
CLASS_TEMPLATES: dict[str, tuple[str, ...]] = {
    "personality": (
        "The {k} of the assistant shows in how {s} and {s2} its replies about the {t} feel.",
        "Users describe the {k} that stays {s} when the talk turns to the {t} and the {t2}.",
        "Notes on {k} and {k2}: the persona remains {s} while it explains the {t}.",
        "Its {s} {k} keeps answers on the {t} consistent and {s2}.",
    ),
    "rhetorical": (
        "The answer uses {k} to explain the {t}, the {s} device that makes the {t2} {s2}.",
        "The {k} about the {t} turns a {s} point into something {s2}.",
        "Writers lean on {k} and {k2} when they present the {t} to a {s} audience.",
        "This {s} passage on the {t} relies on {k} rather than the plain {t2}.",
    ),
    "humor": (
        "The {k} about the {t} lands because the {s} timing makes the {t2} feel {s2}.",
        "The bot answers with {k} when asked about the {t}, {s} and a little {s2}.",
        "Someone shared {k} on the {t} and the {k2} was {s}.",
        "Light {k} keeps the {t} session {s} and {s2}.",
    ),
}
CORPUS_TEMPLATES: tuple[str, ...] = (
    "Step {n}: {v} the {t} and confirm the {t2} is {s}.",
    "When the {t} is {s}, the {t2} may need a restart.",
    "The {t} guide explains how to {v} the {s} {t2}.",
    "Logs show the {t} was {s} while the {t2} handled requests.",
    "Before you {v} the {t}, check that the {t2} is {s}.",
    "The {s} {t} and the {t2} are listed in section {n}.",
)
CORPUS_VERBS = ("install", "configure", "update", "deploy", "restart", "inspect", "connect",
                "upload", "export", "review")

AUTHORS = ("Ana Ruiz", "Ben Carter", "Chen Wei", "Dara Okafor", "Elena Rossi", "Farid Haddad",
           "Grace Kim", "Hugo Lefevre", "Ines Duarte", "Jonas Berg")
LANG_GOOD = ("en", "es")
LANG_ODD = ("EN", "en-US", "en_us", "ES", "es-ES")
SCORE_ODD = (1.3, -0.2, 1.05, -0.01, 1.8)
EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)
SPAN_SECONDS = 2 * 365 * 24 * 3600


@dataclass(frozen=True)
class CollectionSpec:
    """One legacy collection: name, id prefix, size at scale 1 and index settings."""

    name: str
    short: str
    count: int
    space: str
    topics: tuple[str, ...]
    categories: tuple[str, ...]
    description: str
    hnsw: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The legacy ``source`` metadata value, e.g. ``openwebui/core``."""
        return "openwebui/" + self.name.removeprefix("openwebui_")

    def configuration(self) -> dict[str, Any]:
        """The collection configuration Chroma is created with."""
        return {"hnsw": {"space": self.space, **self.hnsw}}

    def metadata(self) -> dict[str, Any]:
        """The collection metadata (owner, description)."""
        return {"owner": "openwebui", "description": self.description}


SPECS: tuple[CollectionSpec, ...] = (
    CollectionSpec("openwebui_core", "core", 3000, "cosine",
                   ("chat", "model", "session", "prompt", "message", "conversation", "workspace", "user"),
                   ("chat", "models", "settings"), "Core chat knowledge chunks"),
    CollectionSpec("openwebui_docs", "docs", 2100, "cosine",
                   ("documentation", "installation", "guide", "reference", "tutorial", "page", "section",
                    "example"),
                   ("guide", "reference", "faq"), "Documentation chunks",
                   {"ef_construction": 200, "max_neighbors": 32}),
    CollectionSpec("openwebui_functions", "func", 1200, "cosine",
                   ("function", "tool", "parameter", "handler", "plugin", "callback", "argument", "module"),
                   ("tools", "functions", "plugins"), "Functions and tools"),
    CollectionSpec("openwebui_pipelines", "pipe", 900, "cosine",
                   ("pipeline", "filter", "valve", "stage", "stream", "queue", "worker", "batch"),
                   ("pipelines", "filters"), "Pipelines and filters"),
    CollectionSpec("openwebui_pain_points", "pain", 800, "l2",
                   ("error", "timeout", "crash", "latency", "outage", "bug", "ticket", "complaint"),
                   ("support", "incident"), "User pain points from support tickets"),
    CollectionSpec("openwebui_careers", "career", 832, "ip",
                   ("engineer", "role", "interview", "salary", "team", "hiring", "mentor", "promotion"),
                   ("jobs", "people"), "Career notes and job posts"),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}


@dataclass(frozen=True)
class Defects:
    """Defect rates of a variant (fractions of a collection's records)."""

    missing_author: float = 0.03
    odd_lang: float = 0.05
    odd_score: float = 0.02
    zero_vector_cosine: float = 0.0125


VARIANT_DEFECTS = {"legacy": Defects(), "damaged": Defects(zero_vector_cosine=0.10)}


@dataclass
class CollectionData:
    """The generated records of one collection, column-wise (as Chroma takes them)."""

    spec: CollectionSpec
    ids: list[str]
    embeddings: np.ndarray
    documents: list[str]
    metadatas: list[dict[str, Any]]
    classes: list[str]
    zero_vector_ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def _check_options(variant: str, scale: float, seed: int) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if not scale > 0 or scale * max(s.count for s in SPECS) > 999_999:
        raise ValueError(f"scale must be > 0 and keep every collection under 1,000,000 records, got {scale}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def scaled_count(spec: CollectionSpec, scale: float) -> int:
    """Number of records of ``spec`` at ``scale`` (at least 1)."""
    return max(1, int(round(spec.count * scale)))


def _class_column(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exactly round(n * share) records of each class, in random order."""
    counts = [int(round(n * CLASS_SHARE[c])) for c in CLASSES[:-1]]
    labels = np.repeat(np.arange(len(CLASSES)), counts + [n - sum(counts)])
    return rng.permutation(labels)


def _pick(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A boolean mask with exactly round(n * share) records set."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=int(round(n * share)), replace=False)] = True
    return mask


def _sentence(template: str, words: dict[str, str]) -> str:
    return template.format(**words)


def _documents(rng: np.random.Generator, spec: CollectionSpec, labels: np.ndarray) -> list[str]:
    """One document per label: a class sentence (unless corpus) and a topic sentence."""
    n = len(labels)
    draws = {name: rng.integers(0, 1 << 30, size=n) for name in
             ("tpl", "k", "k2", "s", "s2", "t", "t2", "ctpl", "cs", "ct", "ct2", "v", "num", "ctpl2", "cv")}
    topics, verbs = spec.topics, CORPUS_VERBS
    corpus_support = CLASS_SUPPORT["corpus"]
    docs: list[str] = []
    for i in range(n):
        cls = CLASSES[labels[i]]
        topic = {"t": topics[draws["ct"][i] % len(topics)], "t2": topics[draws["ct2"][i] % len(topics)],
                 "s": corpus_support[draws["cs"][i] % len(corpus_support)],
                 "v": verbs[draws["v"][i] % len(verbs)], "n": str(1 + draws["num"][i] % 40)}
        first = _sentence(CORPUS_TEMPLATES[draws["ctpl"][i] % len(CORPUS_TEMPLATES)], topic)
        if cls == "corpus":
            topic2 = dict(topic, v=verbs[draws["cv"][i] % len(verbs)],
                          s=corpus_support[draws["s"][i] % len(corpus_support)],
                          t=topics[draws["t"][i] % len(topics)])
            second = _sentence(CORPUS_TEMPLATES[draws["ctpl2"][i] % len(CORPUS_TEMPLATES)], topic2)
            docs.append(f"{first} {second}")
            continue
        nouns, support, templates = CLASS_NOUNS[cls], CLASS_SUPPORT[cls], CLASS_TEMPLATES[cls]
        words = {"k": nouns[draws["k"][i] % len(nouns)], "k2": nouns[draws["k2"][i] % len(nouns)],
                 "s": support[draws["s"][i] % len(support)],
                 "s2": support[(draws["s"][i] + 1 + draws["s2"][i] % (len(support) - 1)) % len(support)],
                 "t": topics[draws["t"][i] % len(topics)], "t2": topics[draws["t2"][i] % len(topics)]}
        docs.append(f"{_sentence(templates[draws['tpl'][i] % len(templates)], words)} {first}")
    return docs


def _metadatas(rng: np.random.Generator, spec: CollectionSpec, n: int, defects: Defects) -> list[dict[str, Any]]:
    """Legacy metadata with the fixable defects (author, lang, score) at exact rates."""
    no_author = _pick(rng, n, defects.missing_author)
    odd_lang = _pick(rng, n, defects.odd_lang)
    odd_score = _pick(rng, n, defects.odd_score)
    authors = rng.integers(0, len(AUTHORS), size=n)
    spanish = rng.random(n) < 0.2
    odd_lang_pick = rng.integers(0, len(LANG_ODD), size=n)
    scores = np.round(rng.uniform(0.05, 0.99, size=n), 3)
    odd_score_pick = rng.integers(0, len(SCORE_ODD), size=n)
    files = rng.integers(0, 60, size=n)
    lines = rng.integers(1, 2000, size=n)
    chunks = rng.integers(0, 40, size=n)
    reviewed = rng.random(n) < 0.6
    seconds = rng.integers(0, SPAN_SECONDS, size=n)
    categories = rng.integers(0, len(spec.categories), size=n)
    topic_pick = rng.integers(0, len(spec.topics), size=n)
    folder = spec.name.removeprefix("openwebui_")
    out: list[dict[str, Any]] = []
    for i in range(n):
        meta: dict[str, Any] = {
            "source": spec.source,
            "file": f"{folder}/{spec.topics[topic_pick[i]]}-{int(files[i]):03d}.md",
            "line": int(lines[i]),
            "category": spec.categories[categories[i]],
            "lang": LANG_ODD[odd_lang_pick[i]] if odd_lang[i] else LANG_GOOD[int(spanish[i])],
            "score": float(SCORE_ODD[odd_score_pick[i]] if odd_score[i] else scores[i]),
            "created_at": (EPOCH + timedelta(seconds=int(seconds[i]))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "chunk_index": int(chunks[i]),
            "reviewed": bool(reviewed[i]),
        }
        if not no_author[i]:
            meta["author"] = AUTHORS[authors[i]]
        out.append(meta)
    return out


def generate_collection(spec: CollectionSpec, variant: str = "legacy", scale: float = 1.0,
                        seed: int = DEFAULT_SEED) -> CollectionData:
    """Generate one collection; the same arguments always give the same records."""
    _check_options(variant, scale, seed)
    defects = VARIANT_DEFECTS[variant]
    index = SPECS.index(spec) if spec in SPECS else len(SPECS)
    rng = np.random.default_rng([seed, index])
    n = scaled_count(spec, scale)
    labels = _class_column(rng, n)
    documents = _documents(rng, spec, labels)
    metadatas = _metadatas(rng, spec, n, defects)
    embeddings = embedder.embed_many(documents, DIM)
    ids = [f"{spec.short}-{i:06d}" for i in range(n)]
    zero_ids: list[str] = []
    if spec.space == "cosine":
        zero = _pick(rng, n, defects.zero_vector_cosine)
        embeddings[zero] = 0.0
        zero_ids = [ids[i] for i in np.flatnonzero(zero)]
    return CollectionData(spec, ids, embeddings, documents, metadatas,
                          [CLASSES[c] for c in labels], zero_ids)


def generate(variant: str = "legacy", scale: float = 1.0, seed: int = DEFAULT_SEED) -> list[CollectionData]:
    """Generate the whole dataset (no server needed): one CollectionData per collection."""
    _check_options(variant, scale, seed)
    return [generate_collection(spec, variant, scale, seed) for spec in SPECS]


def iter_records(variant: str = "legacy", scale: float = 1.0, seed: int = DEFAULT_SEED) -> Iterator[Any]:
    """The dataset as engine Records (``chroma_runbook.io.records.Record``), collection by collection."""
    from chroma_runbook.io.records import Record

    for data in generate(variant, scale, seed):
        for i, rid in enumerate(data.ids):
            yield Record(id=rid, embedding=data.embeddings[i], document=data.documents[i],
                         metadata=dict(data.metadatas[i]), source_collection=data.spec.name)


@dataclass
class LoadReport:
    """What :func:`load` did per collection."""

    loaded: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        total = sum(self.loaded.values())
        parts = [f"loaded {total} records into {len(self.loaded)} collections in {self.seconds:.1f}s"]
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} collections already holding their data "
                         f"({', '.join(self.skipped)})")
        return "; ".join(parts)


def _create_options(spec: CollectionSpec) -> dict[str, Any]:
    """How this client version is told the index settings: configuration (1.x), or
    ``hnsw:*`` metadata (a 0.4/0.5 client, when the lab runs a legacy source)."""
    import chromadb

    if str(chromadb.__version__).startswith("0."):
        legacy_keys = {"ef_construction": "hnsw:construction_ef", "ef_search": "hnsw:search_ef",
                       "max_neighbors": "hnsw:M"}
        hnsw = {legacy_keys.get(k, f"hnsw:{k}"): v for k, v in spec.hnsw.items()}
        return {"metadata": {**spec.metadata(), "hnsw:space": spec.space, **hnsw}}
    return {"configuration": spec.configuration(), "metadata": spec.metadata()}


def _load_collection(client: Any, data: CollectionData, batch_size: int) -> None:
    spec = data.spec
    collection = client.get_or_create_collection(spec.name, embedding_function=None, **_create_options(spec))
    for start in range(0, len(data), batch_size):
        end = min(start + batch_size, len(data))
        try:
            collection.add(ids=data.ids[start:end], embeddings=data.embeddings[start:end],
                           documents=data.documents[start:end], metadatas=data.metadatas[start:end])
        except Exception as exc:  # noqa: BLE001 - re-raised with the collection and batch named
            raise RuntimeError(f"loading {spec.name}: batch {start // batch_size} "
                               f"(ids {data.ids[start]}..{data.ids[end - 1]}) failed: {exc}") from exc


def existing_counts(client: Any) -> dict[str, int]:
    """Record counts of the collections a server holds."""
    counts = {}
    for item in client.list_collections():
        name = item if isinstance(item, str) else item.name
        counts[name] = client.get_collection(name, embedding_function=None).count()
    return counts


def load(url: str, variant: str = "legacy", scale: float = 1.0, seed: int = DEFAULT_SEED,
         batch_size: int = 1000, client: Optional[Any] = None) -> LoadReport:
    """Load the dataset into the Chroma server at ``url``.

    A collection that already holds at least its expected number of records is
    skipped; a partly loaded one is completed (``add`` ignores existing ids).
    """
    _check_options(variant, scale, seed)
    if not 1 <= batch_size <= 5461:
        raise ValueError(f"batch_size must be within 1..5461, got {batch_size}")
    if client is None:
        from chroma_runbook.io.connection import connect

        client = connect({"url": url, "timeout": 300})
    started = time.monotonic()
    report = LoadReport()
    have = existing_counts(client)
    for spec in SPECS:
        expected = scaled_count(spec, scale)
        if have.get(spec.name, 0) >= expected:
            report.skipped[spec.name] = have[spec.name]
            continue
        data = generate_collection(spec, variant, scale, seed)
        _load_collection(client, data, batch_size)
        report.loaded[spec.name] = len(data)
    report.seconds = time.monotonic() - started
    return report


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Chroma server URL, e.g. http://127.0.0.1:8001")
    parser.add_argument("--variant", choices=VARIANTS, default="legacy")
    parser.add_argument("--scale", type=float, default=1.0, help="size factor (4 gives ~40k records)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--batch-size", type=int, default=1000)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = _parse_args(argv)
    try:
        _check_options(args.variant, args.scale, args.seed)
        if not 1 <= args.batch_size <= 5461:
            raise ValueError(f"--batch-size must be within 1..5461, got {args.batch_size}")
    except ValueError as exc:
        print(f"lab.dataset: {exc}", file=sys.stderr)
        return 2
    try:
        report = load(args.url, args.variant, args.scale, args.seed, args.batch_size)
    except Exception as exc:  # noqa: BLE001 - a CLI: say what failed and where, no traceback
        print(f"lab.dataset: loading into {args.url} failed: {exc}", file=sys.stderr)
        return 1
    print(f"lab.dataset ({args.variant}, scale {args.scale}, seed {args.seed}) -> {args.url}: {report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
