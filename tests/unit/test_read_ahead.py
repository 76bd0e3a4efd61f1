"""iter_pages reads ahead: the next pages are asked for (two threads) while the caller handles this
one, yielded in the same order and with the same end as a page-at-a-time read, also when the count
it planned with went stale; a failed read reaches the caller."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chroma_runbook.io.source import iter_pages, overlap_page_size


class SlowCollection:
    """get(limit, offset) over ``n`` ids, each call taking ``delay`` seconds (the server's work)."""

    def __init__(self, n: int, delay: float = 0.0, fail_at: int = -1, counted: int = -1) -> None:
        self.n, self.delay, self.fail_at = n, delay, fail_at
        self.counted = n if counted < 0 else counted
        self.calls: list[tuple[int, float]] = []
        self.lock = threading.Lock()

    def count(self) -> int:
        return self.counted

    def get(self, limit: int, offset: int, include: list[str]) -> dict[str, Any]:  # noqa: ARG002
        with self.lock:
            self.calls.append((offset, time.perf_counter()))
        if offset == self.fail_at:
            raise ConnectionError(f"page at offset {offset} lost")
        time.sleep(self.delay)
        ids = [f"r{i}" for i in range(offset, min(self.n, offset + limit))]
        return {"ids": ids, "embeddings": [[0.0]] * len(ids), "documents": [None] * len(ids),
                "metadatas": [None] * len(ids)}


@pytest.mark.parametrize("read_ahead", [0, 1, 3])
@pytest.mark.parametrize("n", [0, 7, 10, 25])
def test_the_same_pages_in_the_same_order_whatever_the_read_ahead(n: int, read_ahead: int) -> None:
    pages = list(iter_pages(SlowCollection(n), 5, read_ahead=read_ahead))
    assert [i for p in pages for i in p["ids"]] == [f"r{i}" for i in range(n)]
    assert all(len(p["ids"]) == 5 for p in pages[:-1])


def _calls_after_first_page(read_ahead: int) -> int:
    """How many pages were asked for while the caller still holds the first one."""
    collection = SlowCollection(60)
    pages = iter_pages(collection, 10, read_ahead=read_ahead)
    next(pages)
    deadline = time.monotonic() + 5
    while read_ahead and len(collection.calls) < 2 + read_ahead and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # room to ask for more, were the read-ahead not bounded
    asked = len(collection.calls)
    pages.close()  # type: ignore[attr-defined]
    return asked


def test_the_next_pages_are_asked_for_while_the_caller_works_on_this_one() -> None:
    assert _calls_after_first_page(0) == 1           # one at a time: nothing more until asked
    # the page handed over and three more in flight (read_ahead + 1), no further (memory stays bounded)
    assert _calls_after_first_page(2) == 4


@pytest.mark.parametrize("counted", [0, 10, 12])
def test_records_past_a_stale_count_are_still_read_to_the_end(counted: int) -> None:
    pages = list(iter_pages(SlowCollection(27, counted=counted), 5, read_ahead=2))
    assert [i for p in pages for i in p["ids"]] == [f"r{i}" for i in range(27)]


def test_a_failed_read_reaches_the_caller_after_the_pages_before_it() -> None:
    seen = []
    with pytest.raises(ConnectionError, match="offset 10"):
        for page in iter_pages(SlowCollection(30, fail_at=10), 5, read_ahead=2):
            seen.extend(page["ids"])
    assert seen == [f"r{i}" for i in range(10)]


def test_a_page_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="page_size must be >= 1"):
        iter_pages(SlowCollection(3), 0)


@pytest.mark.parametrize("n, sizes", [
    (832, [250, 250, 250, 82]),            # one page of 1,000 would leave nothing to overlap
    (3000, [750, 750, 750, 750]),
    (40_000, [1000] * 40),                 # a large collection keeps the page size asked for
])
def test_a_small_collection_is_read_ahead_in_smaller_pages(n: int, sizes: list[int]) -> None:
    pages = list(iter_pages(SlowCollection(n), 1000, read_ahead=2))
    assert [len(p["ids"]) for p in pages] == sizes
    assert [i for p in pages for i in p["ids"]] == [f"r{i}" for i in range(n)]


def test_pages_read_one_at_a_time_keep_the_size_asked_for() -> None:
    assert [len(p["ids"]) for p in iter_pages(SlowCollection(832), 1000, read_ahead=0)] == [832]
    assert overlap_page_size(0, 1000) == 250 and overlap_page_size(100, 5) == 5
