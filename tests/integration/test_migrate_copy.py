"""chroma_migrate through ansible-playbook: exact copy of awkward data, check mode, idempotence,
existing targets. Real `chroma run` servers on 127.0.0.1."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from migrate_play import base_args, run_migrate, snapshot

UNICODE_DOCS = ["héllo wörld", "日本語のテキスト", "emoji 🚀🔥 and ñ", "quote \" and \\ backslash\nnew line", "", None]


def load_awkward(client) -> dict[str, int]:
    """Collections covering what a copy can get wrong; returns name -> count."""
    rng = np.random.default_rng(7)
    cos = client.create_collection(
        "awk_cosine", metadata={"owner": "team α", "description": "custom hnsw"},
        configuration={"hnsw": {"space": "cosine", "ef_construction": 200, "max_neighbors": 32}},
        embedding_function=None)
    n = 700
    ids = [f"doc {i}/part {i % 3}" if i % 2 else f"id-{i}" for i in range(n)]
    metas = []
    for i in range(n):
        if i % 11 == 0:
            metas.append(None)
            continue
        metas.append({"s": f"v{i} ü", "i": i - 300, "big": 2**53 + i, "f": i / 7.0, "neg": -1.5e-12 * i,
                      "t": i % 2 == 0, "f0": 0.0, "tags": ["a", "b", f"t{i % 4}"], "nums": [i, i + 1]})
    cos.add(ids=ids, embeddings=rng.standard_normal((n, 24)).astype(np.float32),
            documents=[UNICODE_DOCS[i % len(UNICODE_DOCS)] for i in range(n)], metadatas=metas)
    l2 = client.create_collection("awk_l2", configuration={"hnsw": {"space": "l2"}}, embedding_function=None)
    l2.add(ids=[f"l2 {i}" for i in range(300)], embeddings=(rng.standard_normal((300, 8)) * 1e3).astype(np.float32),
           documents=[None] * 300)
    ip = client.create_collection("awk_ip", metadata={"hnsw:space": "ip", "k": 1}, embedding_function=None)
    ip.add(ids=[f"ip/{i}" for i in range(50)], embeddings=rng.standard_normal((50, 8)).astype(np.float32),
           metadatas=[{"only": i} for i in range(50)])
    client.create_collection("awk_empty", configuration={"hnsw": {"space": "ip", "ef_construction": 150}},
                             metadata={"empty": True}, embedding_function=None)
    return {"awk_cosine": n, "awk_l2": 300, "awk_ip": 50, "awk_empty": 0}


def test_exact_copy_check_mode_and_second_run(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    counts = load_awkward(source.client())
    args = base_args(source.url, target.url, tmp_path / "ck", batch_size=128, run_id="copy-1")

    rc, dry, out = run_migrate(tmp_path, args, check=True, name="dry")
    assert rc == 0, out
    assert dry["dry_run"] is True and dry["changed"] is True
    assert dry["phases"]["import"]["would_write_records"] == sum(counts.values())
    assert sorted(dry["phases"]["import"]["would_create"]) == sorted(counts)
    assert target.client().list_collections() == [], "check mode created something on the target"
    assert not (tmp_path / "ck").exists(), "check mode wrote into checkpoint_dir"

    rc, res, out = run_migrate(tmp_path, args, name="real")
    assert rc == 0, out
    assert res["changed"] is True and res["verification"]["passed"] is True
    assert res["imported"] == sum(counts.values()) and res["rejected"] == 0
    assert {n: t["expected"] for n, t in res["targets"].items()} == counts
    want, got = snapshot(source.client()), snapshot(target.client())
    assert set(got) == set(want)
    for name in want:
        assert got[name]["metadata"] == want[name]["metadata"], name
        assert got[name]["hnsw"] == want[name]["hnsw"], name
        assert got[name]["rows"].keys() == want[name]["rows"].keys(), name
        for rid, (doc, meta, emb) in want[name]["rows"].items():
            gdoc, gmeta, gemb = got[name]["rows"][rid]
            assert (gdoc, gmeta) == (doc, meta), (name, rid)
            if want[name]["hnsw"].get("space") == "cosine":
                assert np.allclose(np.frombuffer(gemb, np.float32), np.frombuffer(emb, np.float32), atol=1e-5)
            else:
                assert gemb == emb, (name, rid)  # l2 / ip: bit-exact

    ckpt = json.loads(Path(res["checkpoint_path"]).read_text())
    assert ckpt["phase"] == "completed" and ckpt["successful_chunks"] == sum(counts.values())
    assert sorted(ckpt["created_collections"]) == sorted(counts)
    events = [json.loads(line)["event"] for line in Path(res["log_path"]).read_text().splitlines()]
    assert events[0] == "start" and "batch" in events and events[-1] == "completed"
    assert not Path(ckpt["paths"]["spool"]).exists(), "the spool is removed after completion"

    rc, again, out = run_migrate(tmp_path, args, name="again")
    assert rc == 0, out
    assert again["changed"] is False and again["already_completed"] is True
    assert snapshot(target.client()) == got


def test_existing_target_is_refused_before_any_write_unless_merge(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    load_awkward(source.client())
    foreign = target.client().create_collection("awk_l2", configuration={"hnsw": {"space": "l2"}},
                                                embedding_function=None)
    foreign.add(ids=["foreign-1"], embeddings=np.ones((1, 8), np.float32), documents=["not ours"])
    args = base_args(source.url, target.url, tmp_path / "ck", run_id="conflict")

    rc, res, out = run_migrate(tmp_path, args, name="refused")
    assert rc != 0
    assert "awk_l2 (1 records this run did not write)" in res["msg"] and "existing=merge" in res["msg"]
    assert [c.name for c in target.client().list_collections()] == ["awk_l2"], "something was written"
    assert target.client().get_collection("awk_l2").count() == 1

    rc, res, out = run_migrate(tmp_path, dict(args, existing="merge", run_id="merge"), name="merge")
    assert rc == 0, out
    assert res["merged_collections"] == ["awk_l2"]
    assert target.client().get_collection("awk_l2").count() == 301
    assert res["verification"]["counts"]["awk_l2"] == {"expected": 301, "count": 301, "ok": True}


def test_bad_options_fail_naming_the_option(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    args = base_args(source.url, target.url, tmp_path / "ck", batch_size=6000)
    rc, res, _ = run_migrate(tmp_path, args, name="batch")
    assert rc != 0 and res["msg"].startswith("batch_size must be an integer from 1 to 5461")
    args = base_args(source.url, target.url, tmp_path / "ck",
                     schema={"fields": [{"name": "language", "type": "str", "normalize": ["title"]}]})
    rc, res, _ = run_migrate(tmp_path, args, name="schema")
    assert rc != 0 and "schema.fields[0] (language).normalize[0]: unknown normalizer 'title'" in res["msg"]
    args = base_args(source.url, target.url, tmp_path / "ck", collections=["nope"])
    rc, res, _ = run_migrate(tmp_path, args, name="collections")
    assert rc != 0 and "collections ['nope'] do not exist on the source" in res["msg"]
    assert target.client().list_collections() == []


def test_existing_replace_drops_and_recreates(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    load_awkward(source.client())
    foreign = target.client().create_collection("awk_ip", metadata={"hnsw:space": "ip"}, embedding_function=None)
    foreign.add(ids=["foreign-1", "ip/0"], embeddings=np.full((2, 8), 9, np.float32), documents=["x", "stale"])
    args = base_args(source.url, target.url, tmp_path / "ck", existing="replace", run_id="replace")
    rc, res, out = run_migrate(tmp_path, args)
    assert rc == 0, out
    assert res["replaced_collections"] == ["awk_ip"] and "awk_ip" in res["created_collections"]
    col = target.client().get_collection("awk_ip")
    assert col.count() == 50 and col.get(ids=["foreign-1"])["ids"] == []
    assert col.get(ids=["ip/0"], include=["metadatas"])["metadatas"] == [{"only": 0}]
    assert res["verification"]["passed"] is True
