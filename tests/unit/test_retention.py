"""Customer retention: local calendar periods (DST included), how long a set is kept, and the
per-call state that puts a sale's lead in its sets, also when the lead becomes known late."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from stream.contract import Event
from stream.kpi.contributions import Thresholds
from stream.kpi.retention import keep_until_ms, period_of, previous, retention_rate
from stream.state.call_state import CallState
from stream.state.deltas import Deltas

NY = ZoneInfo("America/New_York")


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        tz: tzinfo = NY) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=tz).timestamp() * 1000)


def test_local_weeks_and_months_across_dst() -> None:
    # Sunday 2026-11-01 is the end of DST in New York: that week is 169 hours long.
    week = period_of("week", _ms(2026, 11, 1, 23, 30), NY)
    assert week.id == "2026-10-26"
    assert (week.start_ms, week.end_ms) == (_ms(2026, 10, 26), _ms(2026, 11, 2))
    assert week.end_ms - week.start_ms == 169 * 3_600_000
    month = period_of("month", _ms(2026, 11, 1, 0, 30), NY)
    assert (month.id, month.start_ms) == ("2026-11", _ms(2026, 11, 1))
    # 02:00 UTC on the 1st is still October 31st in New York: the local calendar decides.
    assert period_of("month", _ms(2026, 11, 1, 2, 0, tz=UTC), NY).id == "2026-10"
    assert previous("month", period_of("month", _ms(2027, 1, 5), NY), NY).id == "2026-12"
    assert previous("week", week, NY).id == "2026-10-19"


def test_sets_are_kept_two_periods_after_their_end_plus_a_week() -> None:
    day = 86_400_000
    assert keep_until_ms("week", "2026-11-30") == _ms(2026, 12, 21, tz=UTC) + 7 * day
    assert keep_until_ms("month", "2026-11") == _ms(2027, 2, 1, tz=UTC) + 7 * day
    assert retention_rate(3, 4) == 0.75 and retention_rate(0, 0) is None


def _ev(**d: object) -> Event:
    return Event.from_dict({"campaign_id": "camp", "call_id": "c1", **d})


def test_a_sale_counts_for_its_lead_once_the_lead_is_known() -> None:
    th = Thresholds(timezone="America/New_York")
    t = _ms(2026, 11, 30, 10)
    wrapup = _ev(event_id="w", type="call.wrapup", ts=t, agent_id="a", wrapup_ms=1000,
                 disposition="sale")
    state = CallState()
    first = Deltas()
    state.apply([wrapup], th, first)
    assert first.lead_sales() == {}  # no lead yet
    late = Deltas()
    state.apply([_ev(event_id="d", type="call.dialed", ts=t - 60_000, lead_id="L1")], th, late)
    assert late.lead_sales() == {(s, p, i, "L1"): 1 for s in ("center", "campaign:camp")
                                 for p, i in (("week", "2026-11-30"), ("month", "2026-11"))}
    # An earlier call.dialed naming another lead moves the sale to that lead.
    moved = Deltas()
    state.apply([_ev(event_id="d0", type="call.dialed", ts=t - 120_000, lead_id="L2")], th, moved)
    assert {k[3]: v for k, v in moved.lead_sales().items()} == {"L1": -1, "L2": 1}
    assert len(moved.lead_sales()) == 8
    # Not a sale, or a duplicate: nothing.
    again = Deltas()
    state.apply([wrapup, _ev(event_id="w2", type="call.wrapup", ts=t, agent_id="a",
                             wrapup_ms=1000, disposition="appointment")], th, again)
    assert again.lead_sales() == {}
