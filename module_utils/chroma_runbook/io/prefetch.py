"""A bounded read-ahead: a thread runs an iterator a few items ahead of its consumer."""
from __future__ import annotations

import queue
import threading
from typing import Iterator, TypeVar

T = TypeVar("T")
_END = object()


def prefetch(source: Iterator[T], depth: int, name: str = "prefetch") -> Iterator[T]:
    """Yield ``source``'s items, produced by a thread at most ``depth`` items ahead.

    Memory is bounded by ``depth`` items; an exception in the producer is raised in the
    consumer; closing the consumer stops the producer.
    """
    items: "queue.Queue[object]" = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            items.put(exc)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
