"""The pure parts of `callkpi rebuild`: its plan, its switch-over check, its validation clock
and its progress bar (the rebuild itself, on real processes: tests/integration/test_rebuild.py)."""

from __future__ import annotations

import io
import json

import pytest

from stream.cli.rebuild import ProgressBar
from stream.contract import Event, Rejection, format_ts
from stream.kpi.contributions import Thresholds
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.processing.pipeline import RawMessage
from stream.processing.rebuild import (
    PartitionPlan,
    Progress,
    RebuildError,
    RebuildPipeline,
    covers,
    make_plan,
    no_dead_letter,
)
from stream.store.redis_store import Store

HOUR = 3_600_000
DAY = 24 * HOUR


def test_make_plan_refuses_a_hole_and_resumes_past_what_the_target_holds() -> None:
    bounds = {"t:0": (0, 100), "t:1": (50, 80)}
    with pytest.raises(RebuildError, match="t:1: offsets 0..49"):
        make_plan(bounds, {}, allow_truncated=False)
    assert make_plan(bounds, {}, allow_truncated=True)[1] == PartitionPlan("t:1", 50, 50, 80)
    resumed = make_plan(bounds, {"t:0": 41, "t:1": 60}, allow_truncated=False)
    assert [p.start for p in resumed] == [42, 61]
    # A target that already holds what retention removed has no hole.
    assert make_plan(bounds, {"t:1": 49}, allow_truncated=False)[1].start == 50


def test_covers_means_no_committed_offset_is_past_the_store() -> None:
    assert covers({"t:0": 9, "t:1": 4}, {"t:0": 10, "t:1": 3})
    assert not covers({"t:0": 8}, {"t:0": 10})
    assert not covers({}, {"t:0": 1})
    assert covers({}, {})


def _message(offset: int, ts_ms: int, published_ms: int) -> RawMessage:
    event = {"event_id": f"e{offset}", "type": "call.dialed", "ts": format_ts(ts_ms),
             "call_id": f"c{offset}", "campaign_id": "k"}
    return RawMessage("t", 0, offset, json.dumps(event).encode(), published_ms)


def test_the_clock_rules_are_judged_when_the_record_was_published() -> None:
    """Days later, a rebuild accepts and rejects what the live worker did when it arrived."""
    published = 1_800_000_000_000
    rebuild_at = published + 2 * DAY
    pipeline = RebuildPipeline(Store("redis://127.0.0.1:1/0"), no_dead_letter, Thresholds(),
                               state_horizon_ms=72 * HOUR, clock=lambda: rebuild_at / 1000)
    future_at_arrival = _message(0, published + HOUR, published)  # valid by the wall clock now
    old_but_kept = _message(1, published - MAX_EVENT_AGE_MS + HOUR, published)  # too_old now
    ordinary = _message(2, published - HOUR, published)
    results = [r for _, r in pipeline.check([future_at_arrival, old_but_kept, ordinary]).checked]
    assert isinstance(results[0], Rejection) and results[0].reason == "future_timestamp"
    assert isinstance(results[1], Event) and isinstance(results[2], Event)


def test_progress_bar_in_a_log_file_writes_a_line_every_tenth() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    for read in range(0, 1001, 50):
        bar.show(Progress(read, 1000, 1000 - read, read == 1000, 100.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 11
    assert lines[-1].startswith("[" + "#" * 30 + "] 1,000/1,000 records 100%")
    assert "lag 0" in lines[-1]
