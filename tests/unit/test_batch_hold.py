"""The consumer's batch hold (`fetch.Gathered`, `CALLKPI_BATCH_HOLD_MS`): fetches of a sink's
topic are handed over together once the oldest has waited the hold or they reach `batch_max`,
in fetch order, every message exactly once."""

from __future__ import annotations

import random
from typing import Any

from stream.processing.fetch import Gathered


def fetch(topic: str, start: int, n: int) -> dict[str, list[Any]]:
    return {topic: [(topic, i) for i in range(start, start + n)]}


def test_no_hold_hands_each_fetch_over_at_once() -> None:
    g = Gathered(0.0, 5000)
    assert g.due(fetch("t", 0, 3), now=0.0) == [("t", [("t", 0), ("t", 1), ("t", 2)])]
    assert g.wait_s(0.0, 1.0) == 1.0


def test_fetches_within_the_hold_are_one_batch() -> None:
    g = Gathered(0.25, 5000)
    assert g.due(fetch("t", 0, 10), now=0.0) == []
    assert g.wait_s(0.1, 1.0) == 0.15  # the next fetch waits no longer than the oldest may
    assert g.due(fetch("t", 10, 10), now=0.1) == []
    assert g.due({}, now=0.2) == []
    assert g.due({}, now=0.25) == [("t", [("t", i) for i in range(20)])]
    assert g.wait_s(0.3, 1.0) == 1.0  # nothing pending: the usual idle wait


def test_a_batch_goes_once_it_reaches_batch_max_and_never_past_it() -> None:
    g = Gathered(10.0, 100)
    assert g.due(fetch("t", 0, 60), now=0.0) == []
    # 60 + 50 would pass 100: the 60 go now, the 50 start the next batch (and its own hold)
    assert g.due(fetch("t", 60, 50), now=1.0) == [("t", [("t", i) for i in range(60)])]
    assert g.due(fetch("t", 110, 50), now=2.0) == [("t", [("t", i) for i in range(60, 160)])]
    assert g.due(fetch("t", 160, 5), now=3.0) == []
    assert g.wait_s(3.0, 1.0) == 1.0  # (the hold is longer than the idle wait)
    assert g.due({}, now=13.0) == [("t", [("t", i) for i in range(160, 165)])]


def test_a_backlog_fetch_is_not_held() -> None:
    g = Gathered(0.25, 100)
    assert g.due(fetch("t", 0, 100), now=0.0) == [("t", [("t", i) for i in range(100)])]


def test_every_message_is_handed_over_once_in_order_whatever_the_fetches() -> None:
    rng = random.Random(7)
    for _ in range(200):
        g, now, start, out = Gathered(rng.choice([0.0, 0.05, 0.3]), rng.choice([1, 7, 50])), 0.0, 0, []
        for _ in range(rng.randrange(1, 40)):
            now += rng.random() * 0.1
            n = rng.randrange(0, 60)
            for _topic, messages in g.due(fetch("t", start, n) if n else {}, now):
                assert len(messages) <= max(g.most, n)  # a fetch larger than batch_max stays whole
                out += messages
            start += n
        out += [m for _, messages in g.due({}, now + 1.0) for m in messages]
        assert out == [("t", i) for i in range(start)]
