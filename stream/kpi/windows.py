"""Windows and buckets: which minute and hour buckets make up a window.

Every counter is kept per minute bucket (short retention) and per hour bucket (long retention).
A window `[from, to)` is read as whole hours from hour buckets plus the minutes at each end from
minute buckets, so any window costs a small, bounded number of keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from stream.kpi.errors import QueryError

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MINUTE_RETENTION_MS = 49 * HOUR_MS
"""Minute buckets are kept 48 h (plus an hour of slack for the current one)."""
HOUR_RETENTION_MS = 36 * DAY_MS
"""Hour buckets are kept 36 days, so a rolling 30-day window always works."""
MAX_EVENT_AGE_MS = 35 * DAY_MS
"""Events older than this are rejected (`too_old`): no bucket would keep them."""
MINUTE_READABLE_MS = 48 * HOUR_MS
"""How far back a minute bucket can be read: its hash expires 49 h after its hour starts."""
HOUR_READABLE_MS = 35 * DAY_MS
"""How far back an hour bucket can be read (the retention): its hash outlives its day by 37 d."""
MAX_AHEAD_MS = 10 * MINUTE_MS
"""An explicit range may end at most this far after now (the contract's dialer clock skew)."""

ROLLING_MINUTES: dict[str, int] = {
    "5m": 5, "15m": 15, "1h": 60, "8h": 480, "24h": 1440, "30d": 30 * 1440,
}
CALENDAR_WINDOWS = ("today",)
WINDOWS: tuple[str, ...] = (*ROLLING_MINUTES, *CALENDAR_WINDOWS)


class WindowError(QueryError):
    """A window or range that cannot be answered; the message says why (an HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Range:
    """A half-open time range in epoch ms."""

    start: int
    end: int


def floor_to(ms: int, step: int) -> int:
    return ms - ms % step


def minute_of(ts_ms: int) -> int:
    """The start of the minute bucket that contains `ts_ms`."""
    return ts_ms - ts_ms % MINUTE_MS


def local_midnight(now_ms: int, tz: ZoneInfo) -> int:
    """Start of the local calendar day containing `now_ms` (DST-correct via zoneinfo).

    Built from the date with fold=0, never by replacing the hour of `now`: in the second pass
    of a repeated midnight hour (America/Havana ends DST at 01:00 back to 00:00) `now` carries
    fold=1 and would give the second 00:00, an hour late. fold=0 is the first 00:00, and in a
    zone with no 00:00 (DST starting at midnight) it is the transition, the day's first instant.
    """
    day = datetime.fromtimestamp(now_ms / 1000, tz).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def resolve_window(window: str, now_ms: int, tz: ZoneInfo) -> Range:
    """A named live window ending at `now_ms`.

    A rolling window of N minutes covers the last N minute buckets, the current (partial) one
    included. A window longer than the minute retention (30d) is N minutes of whole hour
    buckets, the current one included: the range then ends at the end of the current hour (its
    bucket holds everything so far), so it is exactly 30 × 24 h, never 719 h and a bit.
    """
    if window == "today":
        return Range(local_midnight(now_ms, tz), now_ms)
    minutes = ROLLING_MINUTES.get(window)
    if minutes is None:
        raise WindowError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
    if minutes * MINUTE_MS > MINUTE_READABLE_MS:
        end = floor_to(now_ms, HOUR_MS) + HOUR_MS
        return Range(end - minutes * MINUTE_MS, end)
    return Range(minute_of(now_ms) - (minutes - 1) * MINUTE_MS, now_ms)


def check_range(start: int, end: int, now_ms: int) -> Range:
    """An explicit `[from, to)` range, refused (WindowError) unless the kept buckets answer it
    exactly. Cheap checks only, so an absurd range costs nothing before it is refused."""
    if end <= start:
        raise WindowError("'to' must be after 'from'")
    if start % MINUTE_MS or end % MINUTE_MS:
        raise WindowError("'from' and 'to' must be aligned to whole minutes (the bucket size)")
    if end > now_ms + MAX_AHEAD_MS:
        raise WindowError("'to' is more than 10 minutes ahead of now: nothing can be counted there")
    if end - start > HOUR_READABLE_MS:
        raise WindowError("a range may be at most 35 days long (the retention of hour buckets)")
    return check_readable(Range(start, end), now_ms)


def check_readable(r: Range, now_ms: int) -> Range:
    """`r` if every bucket `decompose(r)` reads is still kept at `now_ms`, else WindowError.

    Hour buckets are kept 35 days, minute buckets 48 h: a range (or calendar window) reaching
    further back than 48 h can be answered only where it starts and ends on whole hours. Reading
    an expired bucket would answer short without saying so, so such a range is refused.
    """
    if r.start < now_ms - HOUR_READABLE_MS:
        raise WindowError("'from' is older than the 35-day retention of hour buckets")
    oldest = _oldest_minute(r)
    if oldest is not None and oldest < now_ms - MINUTE_READABLE_MS:
        raise WindowError(
            "where a range lies more than 48 h back it must start and end on a whole hour "
            "(minute buckets are kept 48 h, hour buckets 35 days); this one needs the minute "
            f"buckets from {oldest} (epoch ms)")
    return r


def _oldest_minute(r: Range) -> int | None:
    """The oldest minute bucket `decompose(r)` reads (None: hour buckets only), computed without
    listing the buckets."""
    end = floor_to(r.end - 1, MINUTE_MS) + MINUTE_MS
    first_hour = -(-r.start // HOUR_MS) * HOUR_MS
    last_hour = floor_to(end, HOUR_MS)
    if first_hour >= last_hour or r.start < first_hour:
        return r.start
    return last_hour if last_hour < end else None


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Which buckets make up a range: minute buckets and hour buckets (each a bucket start)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]


def decompose(r: Range) -> Decomposition:
    """Whole hours from hour buckets, the ragged ends from minute buckets.

    The end is rounded up to the minute: the bucket holding `end - 1` is read whole, which is
    what "a live window ends at the query time" means for minute buckets.
    """
    end = floor_to(r.end - 1, MINUTE_MS) + MINUTE_MS
    first_hour = -(-r.start // HOUR_MS) * HOUR_MS
    last_hour = floor_to(end, HOUR_MS)
    if first_hour >= last_hour:
        return Decomposition(tuple(range(r.start, end, MINUTE_MS)), ())
    return Decomposition(
        minutes=(*range(r.start, first_hour, MINUTE_MS), *range(last_hour, end, MINUTE_MS)),
        hours=tuple(range(first_hour, last_hour, HOUR_MS)),
    )


def overlap_ms(a_start: int, a_end: int, b_start: int, b_end: int) -> int:
    """Length of the intersection of two half-open ranges."""
    return max(0, min(a_end, b_end) - max(a_start, b_start))


def split_by_minute(start: int, end: int) -> list[tuple[int, int]]:
    """An interval as (minute bucket start, ms in that bucket) pieces, for agent time."""
    pieces = []
    t = start
    while t < end:
        bucket = minute_of(t)
        nxt = min(bucket + MINUTE_MS, end)
        pieces.append((bucket, nxt - t))
        t = nxt
    return pieces
