"""Ports and lab subnets handed to processes picking at the same moment (pytest-xdist workers) never collide."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from lab import ports
from lab.chroma_server import free_port, free_port_base

WORKERS = 8
SPAN = 12
PORT_LOW = 14100  # no lab of the tests picks here (test_runbook_operator: 13000-14000, test_lab: 15000-)


def _in_processes(target, ledger: Path) -> list[list[int]]:  # noqa: ANN001 - a module-level function
    """Run ``target`` in WORKERS processes released together; what each one picked. The processes are
    spawned, not forked: a fork of a pytest worker inherits whatever its other threads held at that
    instant (a lock held there is held forever in the child, which then never answers)."""
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(target, str(ledger), go, results)) for _ in range(WORKERS)]
    for proc in procs:
        proc.start()
    go.set()
    picked = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    return picked


def _worker(target, ledger: str, go, results) -> None:  # noqa: ANN001
    import os

    os.environ[ports.LEDGER_ENV] = ledger
    go.wait(30)
    results.put(target())


def _base_in_small_range() -> list[int]:
    # 10 spans in the range: random picks by 8 processes would collide almost surely. Below Linux's
    # ephemeral range (32768-60999), where the client connections of tests running beside this one
    # (and their TIME_WAIT sockets) take ports and left fewer than 8 spans free (it failed so, once).
    base = free_port_base(PORT_LOW, PORT_LOW + 10 * SPAN + SPAN, SPAN)
    return list(range(base, base + SPAN))


def _one_port() -> list[int]:
    return [free_port()]


def _smallest_octet() -> list[int]:
    return ports.reserve_keys("octet", lambda taken: [min(set(range(20, 250)) - taken)])


def _disjoint(picked: list[list[int]]) -> bool:
    flat = [n for pick in picked for n in pick]
    return len(flat) == len(set(flat))


def test_port_bases_picked_at_the_same_moment_are_disjoint(tmp_path: Path) -> None:
    picked = _in_processes(_base_in_small_range, tmp_path / "ledger.json")
    assert _disjoint(picked), sorted(p[0] for p in picked)


def test_free_ports_picked_at_the_same_moment_are_distinct_and_held(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.json"
    picked = _in_processes(_one_port, ledger)
    assert _disjoint(picked), picked
    monkeypatch.setenv(ports.LEDGER_ENV, str(ledger))
    seen: set[int] = set()
    ports.reserve(lambda taken: seen.update(taken) or [])
    assert seen == {p[0] for p in picked}  # the ledger holds them: the next caller skips them


def test_lab_subnets_picked_at_the_same_moment_are_distinct(tmp_path: Path) -> None:
    picked = _in_processes(_smallest_octet, tmp_path / "ledger.json")
    assert sorted(p[0] for p in picked) == list(range(20, 20 + WORKERS))


def test_an_expired_or_broken_ledger_never_blocks_a_pick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.json"
    monkeypatch.setenv(ports.LEDGER_ENV, str(ledger))
    assert ports.reserve(lambda taken: [50001], hold_s=-1) == [50001]  # expired at once
    assert ports.reserve(lambda taken: [50001] if 50001 not in taken else []) == [50001]
    ledger.write_text("not json")
    assert ports.reserve(lambda taken: [50001] if 50001 not in taken else []) == [50001]
