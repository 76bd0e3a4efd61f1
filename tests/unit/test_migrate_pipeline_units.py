"""Pure pieces of the pipeline: ack tracking, concurrent writes, batch cutting, retry rules,
atomic checkpoints, the lock, read-ahead."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from chroma_runbook.migrate.batch_writer import AckTracker, write_all
from chroma_runbook.migrate.checkpoint import load, write_atomic
from chroma_runbook.io.prefetch import prefetch
from chroma_runbook.io.retry import call_with_retry, is_transient
from chroma_runbook.run.run_lock import LockHeld, RunLock, check_not_held
from chroma_runbook.migrate.spool import Batch, BatchPlanner, record_json_size


def batch(i: int) -> Batch:
    return Batch(index=i, target="t", ids=[f"id{i}"], embeddings=np.zeros((1, 2), np.float32),
                 documents=[None], metadatas=[None])


def test_ack_tracker_prefix_and_beyond() -> None:
    t = AckTracker()
    for i in (1, 2, 0, 4):
        t.ack(i)
    assert (t.last, t.beyond) == (2, {4})
    assert t.done(0) and t.done(4) and not t.done(3)
    resumed = AckTracker(2, [4, 1])
    assert (resumed.last, resumed.beyond) == (2, {4})


def test_write_all_sends_each_batch_once_and_tracks_out_of_order_acks() -> None:
    sent, acked, skipped = [], [], []
    lock = threading.Lock()

    def send(b: Batch) -> None:
        time.sleep(0.01 if b.index % 2 else 0.03)  # odd batches finish first
        with lock:
            sent.append(b.index)

    tracker = AckTracker(1, [3])
    write_all(iter([batch(i) for i in range(10)]), tracker, 3, send, lambda b: acked.append(b.index),
              lambda b: skipped.append(b.index))
    assert sorted(sent) == [2] + list(range(4, 10))
    assert skipped == [0, 1, 3]
    assert sorted(acked) == sorted(sent) and tracker.last == 9 and not tracker.beyond


def test_write_all_stops_at_the_first_failure() -> None:
    sent = []

    def send(b: Batch) -> None:
        if b.index == 2:
            raise ValueError("refused")
        sent.append(b.index)

    tracker = AckTracker()
    with pytest.raises(ValueError, match="refused"):
        write_all(iter([batch(i) for i in range(50)]), tracker, 2, send, lambda b: None, lambda b: None)
    assert max(sent) < 10 and not tracker.done(2) and tracker.last < 2


def test_batch_planner_cuts_by_count_and_body_budget() -> None:
    p = BatchPlanner(batch_size=3, max_body_bytes=10**9)
    cuts = [p.starts_new_batch(10) for _ in range(7)]
    assert cuts == [False, False, False, True, False, False, True] and p.total() == 3
    size = record_json_size("doc", {"a": 1}, "id", 3072)
    p = BatchPlanner(batch_size=5461, max_body_bytes=32 * 1024 * 1024)
    for _ in range(5461):
        p.starts_new_batch(size)
    assert p.total() == -(-5461 // (32 * 1024 * 1024 // size))  # 3072 dims: body limit decides
    assert size * (32 * 1024 * 1024 // size) <= 32 * 1024 * 1024


def test_transient_errors() -> None:
    req = httpx.Request("POST", "http://x")
    assert is_transient(httpx.ConnectError("refused", request=req))
    assert is_transient(httpx.ReadTimeout("slow", request=req))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(httpx.HTTPStatusError("x", request=req, response=httpx.Response(503, request=req)))
    assert not is_transient(httpx.HTTPStatusError("x", request=req, response=httpx.Response(400, request=req)))
    from chromadb.errors import InternalError, InvalidArgumentError

    assert is_transient(InternalError("boom")) and not is_transient(InvalidArgumentError("bad"))
    assert not is_transient(ValueError("bad data"))


def test_retry_backoff_then_success_and_give_up() -> None:
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("down")
        return "ok"

    assert call_with_retry(flaky, 5, 0.5, sleep=sleeps.append) == "ok" and sleeps == [0.5, 1.0]
    with pytest.raises(ConnectionRefusedError):
        call_with_retry(lambda: (_ for _ in ()).throw(ConnectionRefusedError()), 2, 0.1, sleep=sleeps.append)
    with pytest.raises(ValueError):  # permanent: no retry at all
        call_with_retry(lambda: (_ for _ in ()).throw(ValueError()), 5, 0.1, sleep=lambda s: pytest.fail("slept"))


def test_atomic_checkpoint_never_leaves_a_partial_file(tmp_path: Path) -> None:
    path = str(tmp_path / "r.checkpoint.json")
    write_atomic(path, {"checkpoint_version": 1, "phase": "import", "n": 1})
    write_atomic(path, {"checkpoint_version": 1, "phase": "import", "n": 2})
    assert load(path)["n"] == 2
    assert os.listdir(tmp_path) == ["r.checkpoint.json"]
    Path(path).write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read"):
        load(path)


HOLD = """
import sys, time
sys.path.insert(0, {mu!r})
from chroma_runbook.run.run_lock import RunLock
RunLock({d!r}, "holder-run").acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_lock_names_the_holder_and_is_released_when_it_dies(tmp_path: Path) -> None:
    mu = str(Path(__file__).resolve().parents[2] / "module_utils")
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(mu=mu, d=str(tmp_path))], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld) as err:
            RunLock(str(tmp_path), "mine").acquire()
        assert f"PID {proc.pid}" in str(err.value) and "run_id holder-run" in str(err.value)
        with pytest.raises(LockHeld):
            check_not_held(str(tmp_path))
    finally:
        proc.kill()
        proc.wait()
    with RunLock(str(tmp_path), "mine"):
        assert json.loads((tmp_path / "migrate.lock").read_text())["pid"] == os.getpid()
    check_not_held(str(tmp_path))


def test_prefetch_is_bounded_and_passes_errors_on() -> None:
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    it = prefetch(source(), depth=2)
    assert next(it) == 0
    time.sleep(0.1)
    assert len(produced) <= 4  # one taken, two queued, one waiting to be put
    it.close()

    def broken():
        yield 1
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError, match="source died"):
        list(prefetch(broken(), depth=2))
