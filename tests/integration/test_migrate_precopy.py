"""Pre-copy while the source is written to, then only the delta under the freeze.

A writer changes the source while the pre-copy runs (adds, updates that drop a metadata
key, upserts, deletes, a record turned invalid, one collection created and one deleted).
After the "freeze" (the writer has stopped), the delta pass must leave the target equal to
the source at that moment, exactly, also when it is SIGKILLed and run again."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chroma_runbook.migrate.migration import Migration, run_migration
from chroma_runbook.migrate.migration_options import MigrationOptions, OptionError
from chroma_runbook.migrate.precopy import FingerprintStore, delta_ids_path, fingerprint_path, record_fingerprint
from chroma_runbook.migrate.staging import staging_prefix
from chroma_runbook.migrate.transform_memo import transform_memo_path
from migrate_play import REPO

DIM = 16
SPACES = {"pre_a": "cosine", "pre_b": "l2", "pre_gone": "l2"}
N = {"pre_a": 600, "pre_b": 400, "pre_gone": 100}


def vec(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, DIM)).astype(np.float32)


def fill(client: Any) -> None:
    rng = np.random.default_rng(3)
    for name, n in N.items():
        col = client.create_collection(name, configuration={"hnsw": {"space": SPACES[name]}},
                                       metadata={"team": name}, embedding_function=None)
        col.add(ids=[f"{name}-{i}" for i in range(n)], embeddings=vec(rng, n),
                documents=[f"doc {i}" if i % 5 else None for i in range(n)],
                metadatas=[{"i": i, "drop_me": "x", "kind": "old"} for i in range(n)])


def write_live(client: Any) -> None:
    """What the apps do while the pre-copy runs."""
    rng = np.random.default_rng(9)
    a, b = client.get_collection("pre_a"), client.get_collection("pre_b")
    a.add(ids=[f"pre_a-new-{i}" for i in range(30)], embeddings=vec(rng, 30),
          documents=[f"new {i}" for i in range(30)], metadatas=[{"i": 1000 + i} for i in range(30)])
    # updates that drop a metadata key (the first records are surely copied already)
    a.update(ids=[f"pre_a-{i}" for i in range(0, 40)], metadatas=[{"drop_me": None, "kind": "new"}] * 40)
    b.update(ids=[f"pre_b-{i}" for i in range(390, 400)], metadatas=[{"drop_me": None}] * 10,
             documents=[f"edited {i}" for i in range(10)], embeddings=vec(rng, 10))  # (no embedding function)
    # upserts: existing ids with new vectors and documents, and new ids
    b.upsert(ids=[f"pre_b-{i}" for i in range(5, 25)] + ["pre_b-up-1", "pre_b-up-2"], embeddings=vec(rng, 22),
             documents=[f"upserted {i}" for i in range(22)], metadatas=[{"i": -i, "kind": "up"} for i in range(22)])
    a.delete(ids=[f"pre_a-{i}" for i in range(100, 130)] + [f"pre_a-{i}" for i in range(590, 600)])
    b.delete(ids=["pre_b-0", "pre_b-399"])
    # a record becomes invalid (zero vector in a cosine collection) and one arrives invalid
    a.update(ids=["pre_a-50"], embeddings=[[0.0] * DIM])
    a.add(ids=["pre_a-bad"], embeddings=[[0.0] * DIM], documents=["zero"])
    client.delete_collection("pre_gone")
    new = client.create_collection("pre_new", configuration={"hnsw": {"space": "ip"}}, embedding_function=None)
    new.add(ids=[f"pre_new-{i}" for i in range(15)], embeddings=vec(rng, 15), metadatas=[{"i": i} for i in range(15)])


def options(source: Any, target: Any, ck: Path, **extra: Any) -> MigrationOptions:
    base = dict(source=source.connection, target=target.connection, checkpoint_dir=str(ck), run_id="pc",
                batch_size=40, page_size=20, min_valid_ratio=0.9)
    return MigrationOptions(**{**base, **extra})


def precopy_with_writer(source: Any, target: Any, ck: Path) -> dict[str, Any]:
    """The pre-copy, with the writer running in its own thread from the 100th record read
    until it has done everything (the pre-copy waits for it at the 400th)."""
    started, finished = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        started.wait()
        try:
            write_live(source.client())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finished.set()

    def progress(p: dict[str, Any]) -> None:
        if p["read"] >= 100:
            started.set()
        if p["read"] >= 400:
            assert finished.wait(120)

    thread = threading.Thread(target=writer)
    thread.start()
    result = Migration(options(source, target, ck, precopy=True), progress=progress).run()
    thread.join()
    assert not errors, errors
    assert finished.is_set(), "the writer did not run during the pre-copy"
    return result


def exact(client: Any) -> dict[str, Any]:
    out = {}
    for c in client.list_collections():
        col = client.get_collection(c.name)
        got = col.get(include=["embeddings", "documents", "metadatas"])
        out[c.name] = {"metadata": col.metadata, "space": (col.configuration_json.get("hnsw") or {}).get("space"),
                       "rows": {rid: (got["documents"][i], got["metadatas"][i], np.asarray(got["embeddings"][i]))
                                for i, rid in enumerate(got["ids"])}}
    return out


def expected_from_source(source_client: Any) -> dict[str, Any]:
    """The source at the freeze, minus what validation rejects (zero vectors in cosine collections)."""
    want = exact(source_client)
    for name, col in want.items():
        if col["space"] == "cosine":
            col["rows"] = {i: r for i, r in col["rows"].items() if np.any(r[2])}
    return want


def assert_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name]["metadata"] == want[name]["metadata"], name
        assert got[name]["space"] == want[name]["space"], name
        assert got[name]["rows"].keys() == want[name]["rows"].keys(), name
        for rid, (doc, meta, emb) in want[name]["rows"].items():
            gdoc, gmeta, gemb = got[name]["rows"][rid]
            assert (gdoc, gmeta) == (doc, meta), (name, rid)
            if want[name]["space"] == "cosine":  # Chroma returns cosine vectors a few ulps off
                assert np.allclose(gemb, emb, rtol=0, atol=1e-5), (name, rid)
            else:
                assert np.array_equal(gemb, emb), (name, rid)


def log_events(ck: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (ck / "pc.log.jsonl").read_text().splitlines()]


def test_precopy_then_delta_equals_the_source_at_the_freeze(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    pre = precopy_with_writer(source, target, ck)
    assert pre["precopy"]["added"] >= 900 and pre["changed"]
    # only staging collections on the target so far; the target's own names are untouched
    names = [c.name for c in target.client().list_collections()]
    assert names and all(n.startswith(staging_prefix("pc")) for n in names)
    state = json.loads((ck / "pc.checkpoint.json").read_text())
    assert state["phase"] == "precopied" and "source_counts" not in state or not state["source_counts"]

    # the freeze: the writer has stopped; the delta sends only what changed
    result = run_migration(options(source, target, ck))
    delta = result["phases"]["delta"]
    # surely sent under the freeze: the 40 records updated after they were copied (replaced), the
    # collection created after the pre-copy listed the source (added); most records are unchanged
    assert delta["replaced"] >= 40 and delta["added"] >= 15 and delta["unchanged"] >= 800
    # the unchanged records were not transformed again (the pre-copy's memo); every changed one was
    assert delta["transform"]["reused"] >= 800 and delta["transform"]["transformed"] >= 40 + 15
    assert delta["transform"]["reused"] + delta["transform"]["transformed"] == delta["read"]
    assert result["verification"]["passed"]
    assert result["verification"]["sample"]["sampled"] >= delta["added"] + delta["replaced"]
    assert_equal(exact(target.client()), expected_from_source(source.client()))
    # the two rejected records are in the rejects file and counted, not dropped silently
    rejects = [json.loads(line) for line in Path(result["rejects_path"]).read_text().splitlines()]
    assert sorted(r["id"] for r in rejects) == ["pre_a-50", "pre_a-bad"]
    assert result["rejected"] == 2 and result["rejects_by_issue"] == {"zero_vector": 2}
    # the fingerprint store and the transform memo went with the completed run
    assert not Path(fingerprint_path(str(ck), "pc")).exists()
    assert not Path(transform_memo_path(str(ck), "pc")).exists()
    again = run_migration(options(source, target, ck))
    assert again["already_completed"] and not again["changed"]


def test_a_repeated_precopy_sends_nothing_and_a_store_records_every_staged_record(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    first = run_migration(options(source, target, ck, precopy=True))
    # the checkpoint the playbook's progress lines read counts every batch the target acknowledged,
    # also those acknowledged after the source was read to its end
    state = json.loads((ck / "pc.checkpoint.json").read_text())
    assert (state["synced_chunks"], state["synced_batches"]) == (first["precopy"]["added"],
                                                                 first["precopy"]["batches"]), state
    second = run_migration(options(source, target, ck, precopy=True))
    assert first["precopy"]["added"] == sum(N.values())
    assert (second["precopy"]["added"], second["precopy"]["replaced"]) == (0, 0) and not second["changed"]
    assert Path(fingerprint_path(str(ck), "pc")).stat().st_mode & 0o077 == 0
    store = FingerprintStore(fingerprint_path(str(ck), "pc"))
    known = store.load()
    store.close()
    col = source.client().get_collection("pre_b")
    got = col.get(ids=["pre_b-7"], include=["embeddings", "documents", "metadatas"])
    emb = np.asarray(got["embeddings"][0], dtype=np.float32)
    assert known["pre_b"]["pre_b-7"] == record_fingerprint("pre_b-7", got["documents"][0], got["metadatas"][0], emb)


def test_precopy_refuses_the_direct_import(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    with pytest.raises(OptionError, match="precopy needs the staged import"):
        options(source, target, tmp_path, precopy=True, existing="merge").validate()


RUN = """
import json, sys
sys.path.insert(0, {mu!r})
from chroma_runbook.migrate.migration import run_migration
from chroma_runbook.migrate.migration_options import MigrationOptions
result = run_migration(MigrationOptions(**json.loads(sys.argv[1])))
print(json.dumps({{"passed": result["verification"]["passed"], "delta": result["phases"].get("delta")}}))
"""


def test_sigkill_during_the_delta_then_resume_equals_the_source(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    precopy_with_writer(source, target, ck)
    # more writes before the freeze, so that the delta has many batches to be killed in
    a = source.client().get_collection("pre_a")
    a.update(ids=[f"pre_a-{i}" for i in range(200, 500)], metadatas=[{"drop_me": None, "late": True}] * 300)
    raw = {"source": source.connection, "target": target.connection, "checkpoint_dir": str(ck), "run_id": "pc",
           "batch_size": 40, "page_size": 20, "min_valid_ratio": 0.9}
    code = RUN.format(mu=str(REPO / "module_utils"))
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(raw)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    killed_at = None
    while proc.poll() is None and time.monotonic() < deadline:
        events = log_events(ck) if (ck / "pc.log.jsonl").exists() else []
        starts = [i for i, e in enumerate(events) if e.get("event") == "phase" and e.get("phase") == "delta"]
        sent = [e for e in events[starts[-1]:] if e["event"] == "sync_batch"] if starts else []
        if len(sent) >= 3:
            proc.send_signal(signal.SIGKILL)
            killed_at = len(sent)
            break
        time.sleep(0.01)
    _out, err = proc.communicate(timeout=60)
    assert killed_at is not None, f"the delta ended before it could be killed: {err[-2000:]}"
    assert json.loads((ck / "pc.checkpoint.json").read_text())["phase"] == "delta"

    result = run_migration(MigrationOptions(**raw))
    assert result["verification"]["passed"]
    assert result["phases"]["delta"]["added"] + result["phases"]["delta"]["replaced"] > 0
    assert result["phases"]["delta"]["transform"]["reused"] > 0  # the memo outlives a killed pass
    assert_equal(exact(target.client()), expected_from_source(source.client()))
    # the validation under the freeze re-checks what any delta attempt sent, the killed one's too
    sent = json.loads(Path(delta_ids_path(str(ck), "pc")).read_text())
    assert {f"pre_a-{i}" for i in range(200, 500)} <= set(sent["pre_a"])
    assert result["phases"]["delta"]["replaced"] < 300, "the killed attempt sent some of them already"


def test_the_gate_judges_the_frozen_source_and_drops_the_precopied_staging(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    fill(source.client())
    ck = tmp_path / "ck"
    run_migration(options(source, target, ck, precopy=True))
    # after the pre-copy, a fifth of pre_a turns invalid (zero vectors in a cosine collection)
    source.client().get_collection("pre_a").update(ids=[f"pre_a-{i}" for i in range(300)],
                                                   embeddings=np.zeros((300, DIM), dtype=np.float32))
    with pytest.raises(Exception) as err:
        run_migration(options(source, target, ck))
    assert "below min_valid_ratio" in str(err.value) and "were dropped" in str(err.value)
    assert target.client().list_collections() == []
    rejects = Path(ck / "pc.rejects.jsonl").read_text().splitlines()
    assert len(rejects) == 300
    store = FingerprintStore(fingerprint_path(str(ck), "pc"))
    assert store.counts() == {}
    store.close()
