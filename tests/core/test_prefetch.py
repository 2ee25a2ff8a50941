"""core.prefetch: items produced a step ahead in a thread, in order, errors where they occur."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from hc_studio.core.prefetch import prefetched


def _wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_items_come_in_order_from_another_thread() -> None:
    producers: set[str] = set()

    def numbers():
        for number in range(50):
            producers.add(threading.current_thread().name)
            yield number

    assert list(prefetched(numbers())) == list(range(50))
    assert producers == {"hc-studio-prefetch"}


def test_the_producer_runs_ahead_by_at_most_the_depth() -> None:
    produced: list[int] = []

    def counted():
        for number in itertools.count():
            produced.append(number)
            yield number

    items = prefetched(counted(), depth=2)
    assert next(items) == 0
    # One consumed, two waiting, one held by the producer until there is room.
    assert _wait_for(lambda: len(produced) >= 4)
    time.sleep(0.2)
    assert len(produced) == 4
    items.close()


def test_an_error_while_producing_is_raised_where_its_item_would_have_come() -> None:
    def failing():
        yield 1
        yield 2
        raise OSError("disk gone")

    items = prefetched(failing())
    assert next(items) == 1 and next(items) == 2
    with pytest.raises(OSError, match="disk gone"):
        next(items)


def test_closing_early_stops_the_producer() -> None:
    produced: list[int] = []

    def endless():
        for number in itertools.count():
            produced.append(number)
            yield number

    items = prefetched(endless())
    next(items)
    items.close()
    time.sleep(0.3)  # a stopped producer gives up its blocked put within its poll interval
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count
    assert not any(t.name == "hc-studio-prefetch" and t.is_alive() for t in threading.enumerate())


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        next(prefetched([1], depth=0))
