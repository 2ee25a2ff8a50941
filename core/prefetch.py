"""The items of an iterator produced a step ahead, in a background thread.

Why: measuring a batch alternates reading a file (PNG or DICOM decoding, a few milliseconds,
mostly in C code that lets other threads run) with the network call and the ellipse work. Reading
the next frame while the current one is measured overlaps the two: on the 2-core machine of
`docs/benchmarks.md`, `measure_frame` over the 335 HC18 test-set frames took 29.9-31.1 ms a
frame with the reading a step ahead, against 31.7-32.6 ms one after the other.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.05  # how often a blocked producer looks whether the consumer has gone


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield the items of `items` in order while a daemon thread produces up to `depth` ahead.

    An exception raised while producing is raised here, where its item would have come, and
    ends the iteration. The thread starts on the first `next()`; when this generator is closed
    early (or garbage-collected), the thread stops at its next item. `items` is advanced by
    that thread only, so it must not be shared with other code while this runs.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _offer(slots, (True, item), stop):
                    return
            _offer(slots, (True, _END), stop)
        except BaseException as error:  # handed over: the consumer raises it in its place
            _offer(slots, (False, error), stop)

    thread = threading.Thread(target=produce, name="hc-studio-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            produced, item = slots.get()
            if not produced:
                raise item
            if item is _END:
                return
            yield item
    finally:
        stop.set()


def _offer(slots: queue.Queue, entry: tuple[bool, object], stop: threading.Event) -> bool:
    """Put `entry` once there is room; False when the consumer stopped first."""
    while not stop.is_set():
        try:
            slots.put(entry, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False
