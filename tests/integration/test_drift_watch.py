"""The gate's drift check run beside the validation (io/drift_watch.py, chroma_validate expected_fingerprint).

On a real Chroma server: a fingerprint taken in a forked child while the parent works equals the
gate's own (chroma_info), finds a write, a created and a dropped collection, says why when the
source does not answer, and a child that does not finish in time is killed by its pid and
reaped. Through a real ansible-playbook, chroma_validate returns the check with its report.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from chroma_runbook.io.drift_watch import BackgroundDriftCheck
from chroma_runbook.io.fingerprint import take_fingerprint
from chroma_runbook.io.source import open_source
from module_play import run_module
from snapshot_data import DIM, SPECS, populate

pytestmark = pytest.mark.timeout(600)


def reader(url: str) -> Callable[[], Any]:
    return lambda: open_source({"url": url})


def test_unchanged_source_is_checked_and_equal_to_the_gates_fingerprint(chroma_factory) -> None:
    server = chroma_factory("source")
    populate(server.client())
    expected = take_fingerprint(open_source({"url": server.url}))
    watch = BackgroundDriftCheck(reader(server.url), expected, server.url).start()
    busy = sum(i * i for i in range(200_000))          # the parent keeps working meanwhile
    result = watch.result(120)
    assert busy > 0
    assert result["checked"] is True and result["drift"] == [], result
    assert result["expected_sha256"] == expected["sha256"] and result["duration_s"] > 0, result
    assert result["started_at"] <= result["ended_at"], result


def test_a_write_a_new_and_a_dropped_collection_are_drift(chroma_factory) -> None:
    server = chroma_factory("source")
    client = server.client()
    populate(client)
    expected = take_fingerprint(open_source({"url": server.url}))
    first, second = SPECS[0]["name"], SPECS[1]["name"]
    coll = client.get_collection(first)
    got = coll.get(limit=1, include=["embeddings"])
    coll.update(ids=got["ids"], embeddings=[[v + 0.5 for v in got["embeddings"][0]]])
    client.delete_collection(second)
    client.create_collection("created_after_snapshot", embedding_function=None)
    result = BackgroundDriftCheck(reader(server.url), expected, server.url).start().result(120)
    assert result["checked"] is True, result
    found = {d["collection"]: d["what"] for d in result["drift"]}
    assert found == {first: "written", second: "dropped", "created_after_snapshot": "created"}, found


def test_a_scoped_fingerprint_reads_only_its_collections(chroma_factory) -> None:
    server = chroma_factory("source")
    client = server.client()
    populate(client)
    first = SPECS[0]["name"]
    expected = take_fingerprint(open_source({"url": server.url}), [first])
    client.create_collection("outside_the_scope", embedding_function=None)
    result = BackgroundDriftCheck(reader(server.url), expected, server.url).start().result(120)
    assert result["checked"] is True and result["drift"] == [], result


def test_a_source_that_does_not_answer_proves_nothing_and_says_why(chroma_factory) -> None:
    server = chroma_factory("source")
    populate(server.client())
    expected = take_fingerprint(open_source({"url": server.url}))
    server.stop()
    result = BackgroundDriftCheck(reader(server.url), expected, server.url).start().result(120)
    assert result["checked"] is False and "drift" not in result, result
    assert result["error"].startswith(f"cannot fingerprint the collections of {server.url}"), result


def test_a_check_past_its_deadline_is_killed_and_reaped() -> None:
    def hangs() -> Any:
        time.sleep(60)

    watch = BackgroundDriftCheck(hangs, {"scope": "all", "collections": {}, "sha256": "x"}, "a hung server").start()
    pid = watch._pid
    began = time.monotonic()
    result = watch.result(0.5)
    assert time.monotonic() - began < 5
    assert result["checked"] is False and "did not finish within 0.5 s" in result["error"], result
    with pytest.raises(ChildProcessError):                 # reaped: no such child any more
        os.waitpid(pid, os.WNOHANG)


def test_cancel_kills_the_child() -> None:
    watch = BackgroundDriftCheck(lambda: time.sleep(60), {"scope": "all", "collections": {}}, "x").start()
    pid = watch._pid
    watch.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_chroma_validate_returns_the_drift_check_with_its_report(chroma_pair, tmp_path: Path) -> None:
    source, target = chroma_pair
    populate(source.client())
    populate(target.client())
    expected = take_fingerprint(open_source({"url": source.url}))
    args = {"source": {"url": source.url}, "target": {"url": target.url}, "routing": [],
            "report_dir": str(tmp_path / "reports"), "expected_fingerprint": expected}
    rc, res, out = run_module(tmp_path, "chroma_validate", args, name="unchanged")
    assert rc == 0, out
    assert res["overall_status"] == "PASSED" and res["drift_check"]["checked"] is True, res.get("drift_check")
    assert res["drift_check"]["drift"] == [] and res["drift_check"]["expected_sha256"] == expected["sha256"]

    first = SPECS[0]["name"]
    source.client().get_collection(first).add(ids=["written-after-the-snapshot"], embeddings=[[0.25] * DIM])
    rc, res, out = run_module(tmp_path, "chroma_validate", args, name="written")
    assert rc == 0, out
    assert [(d["collection"], d["what"]) for d in res["drift_check"]["drift"]] == [(first, "written")], res["drift_check"]

    rc, res, out = run_module(tmp_path, "chroma_validate", {**args, "phase": "precopy", "run_id": "r",
                                                            "checkpoint_dir": str(tmp_path / "cp")}, name="pre")
    assert "drift_check" not in res, res.get("drift_check")  # before the freeze there is nothing to compare
