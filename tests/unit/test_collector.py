"""The pipeline process's collector policy frees cycles: frozen ones at the next full collection."""

from __future__ import annotations

import gc
import weakref

from stream.processing import collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_cycle_frozen_after_a_batch_is_reclaimed_by_the_full_collection() -> None:
    thresholds = gc.get_threshold()
    try:
        collector.start()
        assert gc.get_threshold() == collector.GC_THRESHOLDS
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        collector.after_batch()  # the batch kept the pair: it is frozen
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()  # an ordinary collection does not look at frozen objects
        assert gone() is not None
        assert collector.full() >= 2
        assert gone() is None and gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_serve_policy_freezes_startup_and_young_collections_still_free_cycles() -> None:
    thresholds = gc.get_threshold()
    try:
        collector.serving()
        assert gc.get_threshold() == collector.SERVE_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what startup made is not traversed again
        a, b = Node(), Node()  # a request's cycle, made after startup
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        in_flight: list[list[int]] = [[] for _ in range(collector.SERVE_GC_THRESHOLDS[0] + 1)]  # a young collection
        assert gone() is None
        del in_flight
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
