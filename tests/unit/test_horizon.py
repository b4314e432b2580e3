"""The partitions' hold on the agent-state horizon (stream/processing/horizon.py)."""

from __future__ import annotations

from stream.contract import Event
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.processing.horizon import HOLD_ALL_MS, low_watermark, merged
from stream.store.layout import PartitionProgress as P

H = 3_600_000
NOW = 1_000 * H


def event(ts: int) -> Event:
    return Event.from_dict({"event_id": f"e{ts}", "type": "agent.state", "ts": ts,
                            "agent_id": "a1", "state": "available"})


def test_a_batch_reports_its_partitions_progress_and_whether_it_caught_up() -> None:
    stored = {"t:0": P(5 * H, False), "t:1": P(9 * H, True)}
    ahead = {"t:0": P(6 * H, False)}
    out = merged(stored, ahead, [("t:0", event(7 * H)), ("t:0", event(2 * H))],
                 {"lag:t:0": 0, "lag:t:2": 0})
    assert out["t:0"] == P(7 * H, True)  # the newest applied; the fetch reached the end
    assert out["t:1"] == P(9 * H, True)  # untouched
    assert out["t:2"] == P(None, True)  # an empty partition the consumer reported
    assert merged(out, {}, [("t:0", event(8 * H))], {"lag:t:0": 12})["t:0"] == P(8 * H, False)
    # No lag reported with a batch: it may still hold records, so it holds the horizon.
    assert merged(out, {}, [("t:1", event(10 * H))], {})["t:1"] == P(10 * H, False)


def test_only_caught_up_partitions_stop_holding() -> None:
    assert low_watermark({"t:0": P(None, True), "t:1": P(None, True)}, ["t:0", "t:1"], NOW) is None
    assert low_watermark({"t:0": P(None, False)}, [], NOW) == HOLD_ALL_MS
    # Nothing older than the contract's maximum event age is ever needed.
    later = 500 * 24 * H
    assert low_watermark({"t:0": P(0, False)}, [], later) == later - MAX_EVENT_AGE_MS  # 400 days
