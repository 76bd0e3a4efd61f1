"""Edge-case data written with a legacy Chroma's own client (run inside its venv).

    python legacy_edge_data.py --url http://127.0.0.1:PORT      # a running 0.4/0.5 server
    python legacy_edge_data.py --path DIR                        # an embedded persist directory

Three collections whose ids overlap (ids are unique per collection only): cosine with custom
HNSW parameters and a bool in the collection metadata, l2 with defaults, ip. Records hold
None and "" documents, unicode ids including an NFC/NFD pair, ints beyond 2**53, bools and
full-precision floats (the kind 1.5.9 re-rounds by a few ulp). Only chromadb and the
standard library are used, so any Chroma version's venv runs it. Prints a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata

COLLECTIONS = {
    "edge_cosine": {"hnsw:space": "cosine", "hnsw:M": 24, "hnsw:construction_ef": 150, "hnsw:search_ef": 77,
                    "flag": True, "owner": "legacy-test", "ratio": 0.125},
    "edge_l2": {"owner": "legacy-test"},
    "edge_ip": {"hnsw:space": "ip"},
}
SIZE = 130       # past the 100-record brute-force buffer of 0.4/0.5, so the HNSW index is used
DIM = 16
NFC = unicodedata.normalize("NFC", "caf\u00e9")
NFD = unicodedata.normalize("NFD", "caf\u00e9")


def records(name: str, seed: int) -> dict[str, list]:
    rng = random.Random(f"{seed}-{name}")
    ids = [f"rec-{i:04d}" for i in range(SIZE - 4)] + [NFC, NFD, "日本語-ü", "emoji-🙂"]
    documents, metadatas, embeddings = [], [], []
    for i, _ in enumerate(ids):
        documents.append(None if i % 17 == 3 else "" if i % 19 == 5 else f"{name} document {i} {'ü' * (i % 3)}")
        metadatas.append({
            "i": i,
            "big": 2**53 + 1 + i * 7,           # not representable as a double
            "neg_big": -(2**60) - i,
            "flag": i % 2 == 0,
            "ratio": rng.random() * 10 ** rng.randint(-12, 6),   # full precision
            "label": f"label-{i % 5}",
            "empty": "",
        })
        embeddings.append([rng.uniform(-1, 1) for _ in range(DIM)])
    return {"ids": ids, "documents": documents, "metadatas": metadatas, "embeddings": embeddings}


def main() -> int:
    parser = argparse.ArgumentParser()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url")
    where.add_argument("--path")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if args.url:
        host, port = args.url.removeprefix("http://").split(":")
        client = chromadb.HttpClient(host=host, port=int(port), settings=settings)
    else:
        client = chromadb.PersistentClient(path=args.path, settings=settings)
    counts = {}
    for name, metadata in COLLECTIONS.items():
        collection = client.get_or_create_collection(name, metadata=metadata, embedding_function=None)
        data = records(name, args.seed)
        for start in range(0, SIZE, 50):
            part = {k: v[start:start + 50] for k, v in data.items()}
            collection.add(**part)
        counts[name] = collection.count()
    print(json.dumps({"version": chromadb.__version__, "counts": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
