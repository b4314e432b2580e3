"""Every range decomposes into buckets that cover each of its minutes exactly once."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from stream.kpi.windows import (
    HOUR_MS,
    MINUTE_MS,
    ROLLING_MINUTES,
    Range,
    decompose,
    resolve_window,
    split_by_minute,
)

EPOCH_2026 = 1_767_225_600_000
minutes = st.integers(min_value=EPOCH_2026 // MINUTE_MS, max_value=EPOCH_2026 // MINUTE_MS + 60 * 24 * 400)
instants = st.integers(min_value=EPOCH_2026, max_value=EPOCH_2026 + 400 * 24 * HOUR_MS)


def covered_minutes(r: Range) -> list[int]:
    d = decompose(r)
    return sorted([*d.minutes, *(h + m * MINUTE_MS for h in d.hours for m in range(60))])


@given(start_minute=minutes, length_ms=st.integers(min_value=1, max_value=40 * 24 * HOUR_MS))
def test_each_minute_of_a_range_is_covered_exactly_once(start_minute: int, length_ms: int) -> None:
    start = start_minute * MINUTE_MS
    r = Range(start, start + length_ms)
    end_minute = -(-r.end // MINUTE_MS) * MINUTE_MS  # the bucket holding end - 1 is read whole
    assert covered_minutes(r) == list(range(start, end_minute, MINUTE_MS))


@given(start_minute=minutes, length_ms=st.integers(min_value=1, max_value=40 * 24 * HOUR_MS))
def test_hour_buckets_are_whole_hours_inside_the_range(start_minute: int, length_ms: int) -> None:
    r = Range(start_minute * MINUTE_MS, start_minute * MINUTE_MS + length_ms)
    d = decompose(r)
    assert all(h % HOUR_MS == 0 and r.start <= h and h + HOUR_MS <= r.end + MINUTE_MS for h in d.hours)
    assert len(d.minutes) < 2 * 60, "at most the ragged ends come from minute buckets"


@given(now=instants, window=st.sampled_from(sorted(ROLLING_MINUTES)))
def test_a_rolling_window_is_its_last_buckets_each_minute_once(now: int, window: str) -> None:
    """N minutes: the N - 1 minute buckets before the current one, and the current one up to now
    (so an N-minute window spans N - 1 to N minutes of time). A window longer than the minute
    retention (30d) is exactly its N minutes of whole hour buckets, the current hour included."""
    wanted = ROLLING_MINUTES[window]
    covered = covered_minutes(resolve_window(window, now, ZoneInfo("UTC")))
    if window == "30d":
        end = now - now % HOUR_MS + HOUR_MS
        assert covered == list(range(end - wanted * MINUTE_MS, end, MINUTE_MS))
    else:
        first = now - now % MINUTE_MS - (wanted - 1) * MINUTE_MS
        ceil_minute = -(-now // MINUTE_MS) * MINUTE_MS
        assert covered == list(range(first, ceil_minute, MINUTE_MS))


@given(start=instants, length=st.integers(min_value=0, max_value=3 * HOUR_MS))
def test_agent_time_split_by_minute_adds_up_and_stays_in_its_buckets(start: int, length: int) -> None:
    pieces = split_by_minute(start, start + length)
    assert sum(ms for _, ms in pieces) == length
    assert [b for b, _ in pieces] == sorted({b for b, _ in pieces}), "each minute once, in order"
    assert all(0 < ms <= MINUTE_MS and b % MINUTE_MS == 0 for b, ms in pieces)
