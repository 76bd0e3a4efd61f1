"""Sending batches with a few writers in flight, and tracking which ones were acknowledged.

Batches are numbered in a fixed order. With several writers they are acknowledged out of
order, so progress is "every batch up to ``last``" plus the few acknowledged beyond it;
a resumed run skips exactly those and re-sends the rest (add() ignores ids it has).
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, Iterator

from .spool import Batch


class AckTracker:
    """Acknowledged batch indexes as a contiguous prefix (``last``) plus a small set beyond it."""

    def __init__(self, last: int = -1, beyond: Iterable[int] = ()) -> None:
        self.last = last
        self.beyond = {i for i in beyond if i > last}
        self._settle()

    def done(self, index: int) -> bool:
        return index <= self.last or index in self.beyond

    def ack(self, index: int) -> None:
        self.beyond.add(index)
        self._settle()

    def _settle(self) -> None:
        while self.last + 1 in self.beyond:
            self.last += 1
            self.beyond.remove(self.last)


def write_all(batches: Iterator[Batch], tracker: AckTracker, writers: int, send: Callable[[Batch], None],
              on_ack: Callable[[Batch], None], on_skip: Callable[[Batch], None]) -> None:
    """Send every batch ``tracker`` does not know as done, ``writers`` at a time.

    ``on_ack(batch)`` runs under a lock right after the target acknowledged ``batch`` (and after
    ``tracker.ack``); the first failure stops new sends, waits for those in flight, and is raised.
    """
    lock = threading.Lock()
    failures: list[BaseException] = []

    def task(batch: Batch) -> None:
        send(batch)
        with lock:
            tracker.ack(batch.index)
            on_ack(batch)

    in_flight: set[Future[None]] = set()

    def reap(block: bool) -> None:
        nonlocal in_flight
        if not in_flight:
            return
        finished, in_flight = wait(in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in finished:
            exc = fut.exception()
            if exc is not None:
                failures.append(exc)

    with ThreadPoolExecutor(max_workers=max(1, writers), thread_name_prefix="chroma-write") as pool:
        for batch in batches:
            if tracker.done(batch.index):
                on_skip(batch)
                continue
            while len(in_flight) >= writers and not failures:
                reap(block=True)
            if failures:
                break
            in_flight.add(pool.submit(task, batch))
            reap(block=False)
        while in_flight:
            reap(block=True)
    if failures:
        raise failures[0]
