"""Long history against the reference calculator, on a real Redis: a simulated month with every
fault on, fed straight into the pipeline (a month through the broker is too slow here), in a zone
whose DST changes twice inside that month (a 23-hour and a 25-hour local day), across a month
boundary, plus an import of events older than the hour retention (day buckets only).

Every call is in an A/B test and half of the dials re-call customers of earlier days. Series
(every step, with comparisons), breakdowns, the best-hour heatmap, the experiment's numbers and
customer retention (week and month, center and campaigns) must equal what the reference computes
from the raw messages alone.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import zlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from stream.cli.embedded import free_port, start_redis
from stream.kpi.contributions import Thresholds
from stream.kpi.experiments import Experiment, Guardrail, compare
from stream.kpi.windows import WindowError
from stream.processing.pipeline import Pipeline, RawMessage
from stream.readers.api import ApiContext, BadRequest, breakdown_payload, series_payload
from stream.readers.experiments import experiments_payload
from stream.readers.query import Query
from stream.readers.retention import retention_payload
from stream.sim import FaultConfig, SimConfig, Simulator
from stream.sim.model import CAMPAIGNS
from stream.store.redis_store import Store
from tests.reference.calculator import Reference, period_starts
from tests.zones import dst_zone

pytestmark = pytest.mark.integration
NOW_MS = int(time.time() * 1000) // 60_000 * 60_000
NOW_S = NOW_MS / 1000
TOPIC = "dialer.events"
H = 3_600_000
D = 86_400_000
TODAY = datetime.fromtimestamp(NOW_S).date()
ZONE = dst_zone(TODAY - timedelta(days=20), TODAY - timedelta(days=9))
MONTH_START = (TODAY - timedelta(days=2)).replace(day=1)
"""A month boundary 2..32 days back (hour buckets and a past whole day on both sides)."""
KPIS = ("dialed", "handled", "connect_rate", "conversion_rate", "aht_seconds", "abandon_rate",
        "avg_wrapup_seconds", "staffed_seconds", "occupancy", "csat_avg")


def local(d: date, hour: float = 0.0) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=ZONE).timestamp() * 1000 + hour * H)


def runs() -> list[tuple[int, float]]:
    """(start, hours) of the simulated shifts: most days 09:00-11:00 local; the night of each
    DST change (00:30-04:30, across the missing or repeated hour); and a shift across the last
    local midnight of the previous month (22:00-02:00). Plus an import 60-90 days back."""
    out: list[tuple[int, float]] = []
    first = TODAY - timedelta(days=33)
    for k in range(33):
        d = first + timedelta(days=k)
        out.append((local(d, 9), 2.0))
        if d in (TODAY - timedelta(days=20), TODAY - timedelta(days=9)):
            out.append((local(d, 0.5), 4.0))
    out.append((local(MONTH_START, -2), 4.0))
    for back in (90, 75, 62):
        out.append((local(TODAY - timedelta(days=back), 10), 2.0))
    return sorted(set(out))


CODES = ("SALE", "NI", "CALLBK", "DNC", "A")


def with_code(value: bytes) -> bytes:
    """Most simulated wrap-ups get the dialer's own status code (contract 1.1)."""
    try:
        d = json.loads(value)
    except ValueError:
        return value
    if not isinstance(d, dict) or d.get("type") != "call.wrapup" or "disposition_code" in d:
        return value
    n = zlib.crc32(str(d.get("event_id")).encode())
    if n % 5:
        d["disposition_code"] = CODES[(n // 5) % len(CODES)]
    return json.dumps(d).encode()


REPEAT_LEADS = 0.5
"""The share of dials re-calling a customer of an earlier day: customers who buy in more than
one week and month."""


def messages() -> list[RawMessage]:
    """The runs as one center: each run re-calls the customers of the runs before it, and every
    call is in the A/B test (variant A or B, B with a real effect on conversion)."""
    offsets = [0] * 4
    out: list[RawMessage] = []
    customers: dict[str, None] = {}
    for seed, (start, hours) in enumerate(runs(), 1):
        sim = Simulator(SimConfig(seed=seed, agents=3, hours=hours, start_ms=start, teams_of=2,
                                  faults=FaultConfig.all_on(), scenario="ab_test",
                                  scenario_at=0.0, repeat_lead_rate=REPEAT_LEADS,
                                  earlier_leads=tuple(customers)))
        for d in sim:
            p = zlib.crc32(d.key or b"") % 4
            out.append(RawMessage(TOPIC, p, offsets[p], with_code(d.value), d.deliver_ms))
            offsets[p] += 1
        customers.update(dict.fromkeys(sim.customers))
    return out


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Reference]]:
    server = start_redis(free_port(), Path(tmp_path_factory.mktemp("redis")))
    url = f"redis://127.0.0.1:{server.port}/0"
    msgs = messages()

    async def feed() -> None:
        async def dead_letter(key: bytes, value: bytes) -> None:
            return None
        p = Pipeline(Store(url, "hist:", ZONE), dead_letter, Thresholds(timezone=ZONE),
                     state_horizon_ms=72 * H, clock=lambda: NOW_S)
        for i in range(0, len(msgs), 1000):
            await p.handle(msgs[i:i + 1000])
        await p.store.close()
    try:
        asyncio.run(feed())
        yield url, Reference([m.value for m in msgs], now_ms=NOW_MS)
    finally:
        server.stop()


def ctx_of(url: str, now_s: float = NOW_S) -> ApiContext:
    store = Store(url, "hist:", ZONE)
    return ApiContext(store=store, query=Query(store, ZONE), tz=ZONE, call_expiry_ms=4 * H,
                      clock=lambda: now_s)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _call(url: str, fn: Any, params: dict[str, str], now_ms: int = NOW_MS) -> Any:
    ctx = ctx_of(url, now_ms / 1000)
    try:
        return await fn(ctx, params)
    finally:
        await ctx.store.close()


def same(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-6)


def assert_kpis(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    for k, v in got.items():
        assert same(v, want[k]), f"{where}: {k} = {v}, reference {want[k]}"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def check_series(url: str, ref: Reference, params: dict[str, str], scope: str = "center") -> list[dict]:
    out = run(_call(url, series_payload, {"scope": scope, "kpis": ",".join(KPIS), **params}))
    for p in out["points"]:
        assert_kpis(p["kpis"], ref.kpis(scope, ms(p["from"]), ms(p["to"]), now_ms=NOW_MS),
                    f"{scope} {p['from']}")
        if "compare" in p:
            c = p["compare"]
            want = ref.kpis(scope, ms(c["from"]), ms(c["to"]), now_ms=NOW_MS)
            assert_kpis(c["kpis"], want, f"{scope} compare {c['from']}")
            for k in KPIS:
                now_v, before = p["kpis"][k], want[k]
                if now_v is not None and before is not None:
                    assert same(c["change"][k], now_v - before)
    return out["points"]


def test_daily_series_over_the_month_equals_the_reference(fed: tuple[str, Reference]) -> None:
    url, ref = fed
    start, end = local(TODAY - timedelta(days=33)), local(TODAY)
    points = check_series(url, ref, {"from": str(start), "to": str(end), "step": "1d",
                                     "compare": "previous_week"})
    assert len(points) == 33
    lengths = {(ms(p["to"]) - ms(p["from"])) // H for p in points}
    assert lengths == {23, 24, 25}  # both DST changes are inside
    assert sum(p["kpis"]["dialed"] for p in points) > 1000
    for campaign in ref.ids("campaign")[:2]:
        check_series(url, ref, {"from": str(start), "to": str(end), "step": "1d"},
                     f"campaign:{campaign}")


def test_hourly_series_across_both_dst_changes_and_the_month_boundary(fed: tuple[str, Reference]) -> None:
    url, ref = fed
    for d in (TODAY - timedelta(days=20), TODAY - timedelta(days=9)):
        points = check_series(url, ref, {"from": str(local(d)), "to": str(local(d + timedelta(days=1))),
                                         "step": "1h", "compare": "previous_period"})
        assert len(points) in (23, 25)
    check_series(url, ref, {"from": str(local(MONTH_START, -3)), "to": str(local(MONTH_START, 3)),
                            "step": "1h", "compare": "previous_period"})
    recent = NOW_MS - NOW_MS % H
    check_series(url, ref, {"from": str(recent - 20 * H), "to": str(recent), "step": "30m",
                            "compare": "previous_period"})
    check_series(url, ref, {"from": str(recent - 6 * H), "to": str(NOW_MS), "step": "15m"})


def test_weekly_monthly_and_calendar_windows(fed: tuple[str, Reference]) -> None:
    url, ref = fed
    weeks = check_series(url, ref, {"window": "month", "step": "1w"})
    assert all(datetime.fromtimestamp(ms(p["from"]) / 1000, ZONE).weekday() == 0
               for p in weeks[1:])
    months = check_series(url, ref, {"from": str(local(TODAY - timedelta(days=95))),
                                     "to": str(NOW_MS), "step": "1mo"})
    assert sum(p["kpis"]["dialed"] for p in months) == ref.kpis(
        "center", ms(months[0]["from"]), NOW_MS, now_ms=NOW_MS)["dialed"]
    for window in ("last_month", "quarter", "year", "week"):
        check_series(url, ref, {"window": window, "step": "1d"})
    # today so far against the same day a week ago: that point's comparison is rounded
    points = check_series(url, ref, {"window": "week", "step": "1d", "compare": "previous_week"})
    assert points[-1]["compare"]["exact"] is (NOW_MS % H == 0)


def test_imported_old_events_are_in_the_day_buckets_only(fed: tuple[str, Reference]) -> None:
    url, ref = fed
    start = local(TODAY - timedelta(days=91))
    points = check_series(url, ref, {"from": str(start), "to": str(local(TODAY - timedelta(days=40))),
                                     "step": "1d"})
    assert sum(p["kpis"]["dialed"] for p in points) > 100  # the import was counted
    r = redis.Redis.from_url(url, decode_responses=True)
    cutoff = NOW_MS - 37 * D
    for key in r.scan_iter("hist:h:center:*"):
        assert int(key.rsplit(":", 1)[1]) >= cutoff - D, key  # no hour bucket for the import
    with pytest.raises(WindowError, match="local midnight"):
        run(_call(url, series_payload, {"from": str(start + H), "to": str(local(TODAY)),
                                        "step": "1d"}))
    with pytest.raises(WindowError, match="35 days back"):
        run(_call(url, series_payload, {"from": str(start), "to": str(start + 2 * D),
                                        "step": "1h"}))
    with pytest.raises(WindowError, match="400 days"):
        run(_call(url, series_payload, {"from": str(NOW_MS - 401 * D), "to": str(NOW_MS),
                                        "step": "1mo"}))


def test_breakdowns_equal_the_reference(fed: tuple[str, Reference]) -> None:
    url, ref = fed
    for by in ("agent", "team", "campaign", "caller_id", "list"):
        out = run(_call(url, breakdown_payload, {"by": by, "window": "30d",
                                                 "kpis": "handled,connect_rate,aht_seconds",
                                                 "sort": "handled", "limit": "1000"}))
        start, end = ms(out["from"]), ms(out["to"])
        want = {i: ref.kpis(f"{by}:{i}", start, end, now_ms=NOW_MS) for i in ref.ids(by)}
        want = {i: v for i, v in want.items() if v["dialed"] or v["handled"] or v["connected"]}
        assert {r["id"] for r in out["rows"]} >= {i for i, v in want.items() if v["handled"]}, by
        handled = [r["kpis"]["handled"] for r in out["rows"]]
        assert handled == sorted(handled, reverse=True)
        for row in out["rows"]:
            assert_kpis(row["kpis"], ref.kpis(row["scope"], start, end, now_ms=NOW_MS), row["scope"])
    with pytest.raises(BadRequest, match="whole center"):
        run(_call(url, breakdown_payload, {"by": "agent", "scope": "team:x"}))


def wilson(s: int, n: int) -> tuple[float, float] | None:
    """A second implementation (z for 95 % written out)."""
    if n == 0:
        return None
    z, p = 1.959963984540054, s / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize("by", ["hour_of_day", "weekday_hour"])
def test_best_hour_heatmap_equals_the_reference(fed: tuple[str, Reference], by: str) -> None:
    url, ref = fed
    out = run(_call(url, breakdown_payload, {"by": by, "window": "30d"}))
    want = ref.hour_cells("center", ms(out["from"]), ms(out["to"]), ZONE,
                          weekday=by == "weekday_hour")
    got = {(c.get("weekday", -1), c["hour"]): c for c in out["cells"]}
    assert {k for k, v in want.items() if v.get("attempts_completed") or v.get("connected")} <= set(got)
    for key, c in got.items():
        w = want.get(key, {})
        attempts, connected = int(w.get("attempts_completed", 0)), int(w.get("connected", 0))
        live = connected + int(w.get("offered", 0))
        assert (c["attempts"], c["connected"], c["live_contacts"], c["conversions"]) == (
            attempts, connected, live, int(w.get("conversions", 0))), key
        ci = wilson(min(connected, attempts), attempts)
        assert (c["connect_rate_ci"] is None) == (ci is None)
        if ci:
            assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(c["connect_rate_ci"], ci, strict=True))
    ranked = run(_call(url, breakdown_payload, {"by": by, "window": "30d",
                                                "sort": "connect_rate", "limit": "3"}))
    rates = [c["connect_rate"] for c in ranked["cells"]]
    assert len(rates) == 3 and rates == sorted(rates, reverse=True)


def test_day_hashes_are_one_per_scope_per_local_day(fed: tuple[str, Reference]) -> None:
    url, _ = fed
    r = redis.Redis.from_url(url, decode_responses=True)
    days = sorted(k.rsplit(":", 1)[1] for k in r.scan_iter("hist:d:center:*"))
    assert len(days) >= 33 + 3
    newest = days[-1]
    assert 399 * D < r.pttl(f"hist:d:center:{newest}") < 402 * D  # its day end + 401 days
    assert r.object("encoding", f"hist:d:center:{newest}") in ("listpack", "ziplist")  # small
    assert r.smembers(f"hist:ix:campaign:{newest[:7]}")


def test_disposition_codes_equal_the_reference(fed: tuple[str, Reference]) -> None:
    url, ref = fed
    for scope in ("center", f"campaign:{ref.ids('campaign')[0]}"):
        out = run(_call(url, breakdown_payload, {"by": "disposition_code", "scope": scope,
                                                 "window": "last_week", "limit": "1000"}))
        want = ref.kpis(scope, ms(out["from"]), ms(out["to"]), now_ms=NOW_MS)
        assert {c["code"]: c["wrapups"] for c in out["codes"]} == want["wrapups_by_code"]
        assert len(out["codes"]) == len(CODES)
        counts = [c["wrapups"] for c in out["codes"]]
        assert counts == sorted(counts, reverse=True)
        for c in out["codes"]:
            assert same(c["share"], c["wrapups"] / want["wrapups"])


def _set_kept(period: str, start_ms: int) -> bool:
    """Whether the store still keeps a period's set of buying leads at NOW: two periods after
    its end plus a week (`stream.kpi.retention.keep_until_ms`; here in local days, which the
    week's margin covers)."""
    end = period_starts(period, start_ms, ZONE)[2]
    two_later = period_starts(period, period_starts(period, end, ZONE)[2], ZONE)[2]
    return two_later + 7 * D > NOW_MS


def test_retention_per_week_and_month_equals_the_reference(fed: tuple[str, Reference]) -> None:
    """Repeat leads over the month (and the imports before it): buying, repeat and previous
    buying customers of the center and each campaign, per local week and month, as the API
    answers them now, a week ago and in the previous month, equal the reference's sets."""
    url, ref = fed
    month_start = period_starts("month", NOW_MS, ZONE)[1]
    clocks = (NOW_MS, NOW_MS - 7 * D, month_start - 60_000, local(MONTH_START, 12))
    checked = repeats = 0
    for scope in ("center", *(f"campaign:{c}" for c in ref.ids("campaign"))):
        for period in ("week", "month"):
            for at in clocks:
                body = run(_call(url, retention_payload, {"scope": scope, "period": period},
                                 now_ms=at))
                for key in ("current", "previous"):
                    row = body[key]
                    start = ms(row["from"])
                    if not _set_kept(period, period_starts(period, start, ZONE)[0]):
                        continue  # the set before it has expired (the reference keeps all)
                    want = ref.retention(scope, period, start, ZONE)
                    assert {k: row[k] for k in want} == want, (scope, period, key, row["from"])
                    checked += 1
                    repeats += want["repeat_customers"]
    assert checked >= 40 and repeats >= 10, (checked, repeats)
    assert "L1-" not in json.dumps(body)  # counts only, no lead


EXPERIMENT = Experiment(
    name="script-test", variants=("A", "B"), control="A", primary_kpi="conversion_rate",
    minimum_detectable_effect=0.2, campaigns=tuple(sorted(c.id for c in CAMPAIGNS)),
    guardrails=(Guardrail("aht_seconds", "lower", 0.5), Guardrail("abandon_rate", "lower", 0.5)))


def check_experiment(url: str, ref: Reference, params: dict[str, str]) -> dict[str, Any]:
    out = run(_call(url, lambda ctx, p: experiments_payload(ctx, (EXPERIMENT,), p), params))
    e = out["experiments"][0]
    start, end = ms(e["from"]), ms(e["to"])
    arms = ref.conversion_arms(EXPERIMENT.variants, start, end)
    rows = {v["variant"]: v for v in e["variants"]}
    for variant, (s, n) in arms.items():
        assert (rows[variant]["successes"], rows[variant]["trials"]) == (s, n), (variant, params)
    cmp = compare(arms["A"], arms["B"], EXPERIMENT.minimum_detectable_effect)
    b = rows["B"]
    assert same(b["rate"], cmp.rate) and same(b["lift"], cmp.lift), params
    assert same(b["p_value"], cmp.p_value) and b["test"] == cmp.test
    assert b["needed_per_arm"] == cmp.needed_per_arm
    for variant in EXPERIMENT.variants:
        want = ref.kpis(f"variant:{variant}", start, end, now_ms=NOW_MS)
        for g in rows[variant]["guardrails"]:
            assert same(g["value"], want[g["kpi"]]), (variant, g["kpi"], params)
    return e


def test_experiment_over_the_month_equals_the_reference(fed: tuple[str, Reference]) -> None:
    """The A/B test's numbers over the simulated month (both DST changes and the month boundary
    inside), each calendar window and each DST day equal the reference's arms."""
    url, ref = fed
    month = check_experiment(url, ref, {"from": str(local(TODAY - timedelta(days=33))),
                                        "to": str(local(TODAY))})
    control, b = month["variants"]
    assert control["trials"] > 500 and b["trials"] > 500
    assert b["lift"] > 0.2 and b["p_value"] < 0.05, b  # the simulated effect is found
    check_experiment(url, ref, {})  # its own window (30d)
    for window in ("last_week", "week", "month", "30d"):
        check_experiment(url, ref, {"window": window})
    for d in (TODAY - timedelta(days=20), TODAY - timedelta(days=9)):
        check_experiment(url, ref, {"from": str(local(d)), "to": str(local(d + timedelta(days=1)))})
    check_experiment(url, ref, {"from": str(local(MONTH_START, -3)),
                                "to": str(local(MONTH_START, 3))})
    # Older than the hour buckets: whole local days from the day buckets (the imports).
    check_experiment(url, ref, {"window": "last_month"})
    check_experiment(url, ref, {"from": str(local(TODAY - timedelta(days=91))),
                                "to": str(local(TODAY))})
