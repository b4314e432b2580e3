"""Customer retention: distinct buying customers per local week and month (seed 004).

The catalog's KPIs are sums of counters; these are sizes of *sets* of leads, so they are
defined here. A sale is a `call.wrapup` with disposition `sale`; its customer is the call's
`lead_id` (of the call's earliest `call.dialed`, attributed like `list:` and `variant:`, so a
`call.dialed` that arrives after the wrap-up still puts the sale's lead in). Per scope (`center`
and `campaign:<id>`) and period (local calendar week from Monday 00:00, local calendar month,
in the configured time zone) the store keeps the set of leads with a sale:

* `buying_customers` = |S(P)|: distinct leads with a sale in the period;
* `repeat_customers` = |S(P) ∩ S(P−1)|: of those, the leads that also bought in the previous
  period;
* `retention_rate` = repeat_customers ÷ buying_customers of the previous period
  (|S(P) ∩ S(P−1)| ÷ |S(P−1)|): the share of last period's customers who bought again.

Pure: period arithmetic and the definitions; the store keeps the sets, the reader counts them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal, NamedTuple

Period = Literal["week", "month"]
PERIODS: tuple[Period, ...] = ("week", "month")
SCOPE_KINDS = ("center", "campaign")
"""The scopes retention is kept for (each sale is in the center and its campaign)."""
SALE_DISPOSITION = "sale"
DAY_MS = 86_400_000
KEEP_MARGIN_MS = 7 * DAY_MS


class RetentionKpi(NamedTuple):
    name: str
    unit: str
    formula: str
    help: str


RETENTION_KPIS: tuple[RetentionKpi, ...] = (
    RetentionKpi("buying_customers", "count", "|S(P)|",
                 "distinct leads (lead_id) with a sale in the period"),
    RetentionKpi("repeat_customers", "count", "|S(P) ∩ S(P−1)|",
                 "of those, the leads that also bought in the previous period"),
    RetentionKpi("retention_rate", "ratio", "repeat_customers ÷ |S(P−1)|",
                 "share of the previous period's buying customers who bought again"),
)
"""S(P): the set of leads with a sale in period P (local week or month) of the scope."""


class PeriodSpan(NamedTuple):
    """One local calendar period: its id (`2026-11-30` for the week starting that Monday,
    `2026-11` for a month) and its [start, end) in epoch ms."""

    id: str
    start_ms: int
    end_ms: int


def _local_date(ts_ms: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, tz).date()


def _ms(d: date, tz: tzinfo) -> int:
    """Local midnight starting `d` (DST-correct: zoneinfo resolves the wall time)."""
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000)


def _first_day(period: Period, d: date) -> date:
    return d - timedelta(days=d.weekday()) if period == "week" else d.replace(day=1)


def _next_first(period: Period, first: date) -> date:
    if period == "week":
        return first + timedelta(days=7)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _previous_first(period: Period, first: date) -> date:
    if period == "week":
        return first - timedelta(days=7)
    return (first - timedelta(days=1)).replace(day=1)


def _span(period: Period, first: date, tz: tzinfo) -> PeriodSpan:
    ident = first.isoformat() if period == "week" else first.strftime("%Y-%m")
    return PeriodSpan(ident, _ms(first, tz), _ms(_next_first(period, first), tz))


def period_of(period: Period, ts_ms: int, tz: tzinfo) -> PeriodSpan:
    """The local week or month containing `ts_ms`."""
    return _span(period, _first_day(period, _local_date(ts_ms, tz)), tz)


def previous(period: Period, span: PeriodSpan, tz: tzinfo) -> PeriodSpan:
    """The period of the same kind just before `span`."""
    first = _local_date(span.start_ms, tz)
    return _span(period, _previous_first(period, first), tz)


def keep_until_ms(period: Period, period_id: str) -> int:
    """When a period's set may expire: it is read as the current period, as the previous one
    (the next period's repeats) and as the one before (the previous period's repeats, which the
    API also reports), so it is kept two periods after its end, plus a week of margin (which
    also covers any zone's offset: the dates are taken as UTC here, so the store needs no
    zone)."""
    first = date.fromisoformat(period_id if period == "week" else period_id + "-01")
    for _ in range(3):
        first = _next_first(period, first)
    return _ms(first, UTC) + KEEP_MARGIN_MS


def retention_rate(repeat: int, previous_buyers: int) -> float | None:
    return repeat / previous_buyers if previous_buyers else None
