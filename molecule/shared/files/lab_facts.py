#!/usr/bin/env python3
"""What the molecule verifiers need to know about a lab's Chroma servers, as JSON.

Reads the real servers through chromadb's HTTP client (documents and metadatas
only unless a fingerprint is asked for; never a query text, so no model is ever
loaded). Independent of the migration engine on purpose: it applies the routing
rules and the profile's required fields itself, from the same group_vars data.

    lab_facts.py counts      --url URL
    lab_facts.py routing     --source URL --target URL [--rejects FILE]   (stdin: {"routing": [...]})
    lab_facts.py required    --target URL                                 (stdin: {"profile": {...}})
    lab_facts.py fingerprint --url URL
    lab_facts.py damage      --url URL --collection NAME --count N    (negates N stored vectors)

Every command prints one JSON object on stdout and exits 0 when it could read the
servers; the verifier's assert tasks judge the figures.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

PAGE = 2000


def client(url: str) -> Any:
    import chromadb
    from chromadb.config import Settings

    parts = urlsplit(url)
    return chromadb.HttpClient(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 8000,
        ssl=parts.scheme == "https",
        settings=Settings(anonymized_telemetry=False),
    )


def collections(url: str) -> dict[str, Any]:
    api = client(url)
    return {col.name: api.get_collection(col.name) for col in api.list_collections()}


def records(collection: Any, include: list[str]) -> Iterator[tuple[str, Any, Any, Any]]:
    """(id, document, metadata, embedding) in insertion order, page by page."""
    offset = 0
    while True:
        page = collection.get(limit=PAGE, offset=offset, include=include)
        ids = page["ids"]
        if not ids:
            return
        docs = page.get("documents") or [None] * len(ids)
        metas = page.get("metadatas") or [None] * len(ids)
        embs = page.get("embeddings")
        if embs is None:
            embs = [None] * len(ids)
        yield from zip(ids, docs, metas, embs)
        offset += len(ids)


def counts(url: str) -> dict[str, int]:
    return {name: col.count() for name, col in sorted(collections(url).items())}


def rule_matches(rule: dict[str, Any], source: str, document: str | None, metadata: dict | None) -> bool:
    match = rule.get("match") or {}
    if "collection" in match and not fnmatch.fnmatchcase(source, match["collection"]):
        return False
    if "document_regex" in match and not re.search(match["document_regex"], document or ""):
        return False
    for field, pattern in (match.get("metadata") or {}).items():
        if field not in (metadata or {}) or not re.search(pattern, str(metadata[field])):
            return False
    return True


def route(rules: list[dict[str, Any]], source: str, document: str | None, metadata: dict | None) -> str:
    for rule in rules:
        if rule_matches(rule, source, document, metadata):
            return rule["target"]
    return source


def rejected_keys(path: str | None) -> tuple[set[tuple[str, str]], set[str], int]:
    """(source_collection, id) pairs and bare ids listed in a rejects.jsonl file, and its line count."""
    pairs: set[tuple[str, str]] = set()
    bare: set[str] = set()
    lines = 0
    if not path or not Path(path).is_file():
        return pairs, bare, lines
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        lines += 1
        entry = json.loads(line)
        rid = str(entry.get("id"))
        source = entry.get("source_collection") or entry.get("collection")
        if source:
            pairs.add((source, rid))
        else:
            bare.add(rid)
    return pairs, bare, lines


def routing_report(source_url: str, target_url: str, rules: list[dict[str, Any]], rejects: str | None) -> dict[str, Any]:
    """Ids each target should hold by the routing rules (minus rejects) against what it holds."""
    pairs, bare, reject_lines = rejected_keys(rejects)
    predicted: dict[str, set[str]] = defaultdict(set)
    routed_rejects: Counter[str] = Counter()
    source_total = 0
    for name, col in sorted(collections(source_url).items()):
        for rid, doc, meta, _ in records(col, ["documents", "metadatas"]):
            source_total += 1
            target = route(rules, name, doc, meta)
            if (name, rid) in pairs or rid in bare:
                routed_rejects[target] += 1
                continue
            predicted[target].add(rid)
    targets = collections(target_url)
    report: dict[str, Any] = {"source_total": source_total, "reject_lines": reject_lines, "collections": {}}
    for target in sorted(set(predicted) | set(targets)):
        held = {rid for rid, *_ in records(targets[target], [])} if target in targets else set()
        want = predicted.get(target, set())
        report["collections"][target] = {
            "predicted": len(want),
            "actual": len(held),
            "rejected": routed_rejects[target],
            "missing": sorted(want - held)[:10],
            "missing_count": len(want - held),
            "unexpected": sorted(held - want)[:10],
            "unexpected_count": len(held - want),
        }
    report["target_total"] = sum(c["actual"] for c in report["collections"].values())
    return report


def required_fields(profile: dict[str, Any], collection_type: str) -> list[str]:
    fields = [f for f in profile.get("fields", []) if f.get("required")]
    fields += [f for f in (profile.get("collection_fields") or {}).get(collection_type, []) if f.get("required")]
    return [f["name"] for f in fields]


def required_report(target_url: str, profile: dict[str, Any]) -> dict[str, Any]:
    """Per target collection of the profile: records lacking each required field."""
    targets = collections(target_url)
    report: dict[str, Any] = {"collections": {}}
    for name, spec in sorted((profile.get("collections") or {}).items()):
        fields = required_fields(profile, spec.get("collection_type", ""))
        missing: Counter[str] = Counter()
        total = 0
        example: dict[str, str] = {}
        if name in targets:
            for rid, _, meta, _ in records(targets[name], ["metadatas"]):
                total += 1
                for field in fields:
                    if field not in (meta or {}) or (meta or {}).get(field) is None:
                        missing[field] += 1
                        example.setdefault(field, rid)
        report["collections"][name] = {
            "present": name in targets,
            "records": total,
            "required_fields": fields,
            "missing": dict(missing),
            "example_ids": example,
        }
    return report


def fingerprint(url: str) -> dict[str, Any]:
    """Per collection: count and a sha256 over every record (id, vector bytes, document, metadata)."""
    import numpy as np

    report: dict[str, Any] = {}
    for name, col in sorted(collections(url).items()):
        rows = []
        for rid, doc, meta, emb in records(col, ["documents", "metadatas", "embeddings"]):
            vec = np.asarray(emb, dtype=np.float32).tobytes() if emb is not None else b""
            rows.append((rid, hashlib.sha256(vec).hexdigest(), doc, json.dumps(meta, sort_keys=True)))
        rows.sort()
        digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
        report[name] = {"count": len(rows), "sha256": digest}
    return report


def damage(url: str, collection: str, count: int) -> dict[str, Any]:
    """Corrupt a collection in place: the first ``count`` records get their vector negated."""
    import numpy as np

    col = client(url).get_collection(collection)
    page = col.get(limit=count, offset=0, include=["embeddings"])
    vectors = -np.asarray(page["embeddings"], dtype=np.float32)
    col.update(ids=page["ids"], embeddings=vectors)
    return {"collection": collection, "damaged": len(page["ids"]), "ids": page["ids"][:10]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("counts").add_argument("--url", required=True)
    routing = sub.add_parser("routing")
    routing.add_argument("--source", required=True)
    routing.add_argument("--target", required=True)
    routing.add_argument("--rejects")
    sub.add_parser("required").add_argument("--target", required=True)
    sub.add_parser("fingerprint").add_argument("--url", required=True)
    damaging = sub.add_parser("damage")
    damaging.add_argument("--url", required=True)
    damaging.add_argument("--collection", required=True)
    damaging.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "counts":
        out: dict[str, Any] = counts(args.url)
    elif args.command == "routing":
        out = routing_report(args.source, args.target, json.load(sys.stdin)["routing"], args.rejects)
    elif args.command == "required":
        out = required_report(args.target, json.load(sys.stdin)["profile"])
    elif args.command == "damage":
        out = damage(args.url, args.collection, args.count)
    else:
        out = fingerprint(args.url)
    json.dump(out, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
