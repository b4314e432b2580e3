"""History reads: time series, breakdowns and rankings, the best-hour heatmap (`docs/history.md`).

The one read API over long history that later readers (reports, charts, experiments) build on:

- `series(...)`: one `SeriesPoint` per local step, every KPI computed from that step's own sums.
- `breakdown(...)`: a ranked table of the scopes of one kind (`BreakdownRow`).
- `hour_profile(...)`: connect and conversion rate per local hour (or weekday × hour) with the
  attempts behind each cell and Wilson 95 % intervals (`HourCell`).

Every range is decomposed into whole local days (day buckets), whole hours (hour buckets) and
minutes (`stream.kpi.windows.decompose`), and the needed fields are summed inside Redis (the
read-only script of `stream.readers.sums`), one pipelined round trip per request.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, TypedDict
from zoneinfo import ZoneInfo

from stream.contract import format_ts
from stream.kpi.catalog import KPI_BY_NAME, WRAPUP_CODE_PREFIX
from stream.kpi.experiments import wilson_interval
from stream.kpi.scopes import Scope
from stream.kpi.windows import (
    DAY_MS,
    HOUR_MS,
    HOUR_READABLE_MS,
    MINUTE_MS,
    Range,
    WindowError,
    add_months,
    check_readable,
    decompose,
    floor_to,
    local_date,
    local_day_of,
    local_start,
)
from stream.readers.query import STATE_COUNTERS, add_open_time
from stream.readers.sums import FIELDS_PER_CALL, WINDOW_SUMS_LUA, counters_of
from stream.store.layout import month_label
from stream.store.redis_store import Store

MAX_POINTS = 1_000
"""Most points a series (and as many comparison points) may have: 15-minute steps for 10 days."""
MAX_SCOPES = 20_000
"""Most scopes one breakdown reads (5,000 agents fit four times over)."""
MAX_BUCKET_READS = 100_000
"""Most bucket hashes one breakdown reads (scopes × buckets per scope): 3,000 agents over 30
days, about 5 s of Redis time on the benchmark machine, in script calls of bounded length."""
MAX_LIMIT = 1_000
"""Most rows a breakdown returns."""
MAX_KPIS = 40


class Step(StrEnum):
    """A series step, aligned to the center's local time (weeks start on Monday)."""

    MIN15 = "15m"
    MIN30 = "30m"
    HOUR = "1h"
    DAY = "1d"
    WEEK = "1w"
    MONTH = "1mo"


FIXED_STEP_MS = {Step.MIN15: 15 * MINUTE_MS, Step.MIN30: 30 * MINUTE_MS, Step.HOUR: HOUR_MS}


class Compare(StrEnum):
    """What a series point is compared with."""

    PREVIOUS_PERIOD = "previous_period"  # the same number of steps just before the series
    PREVIOUS_WEEK = "previous_week"      # the same local time 7 days earlier
    PREVIOUS_YEAR = "previous_year"      # the same local date and time a year earlier


class BreakdownBy(StrEnum):
    AGENT = "agent"
    TEAM = "team"
    CAMPAIGN = "campaign"
    CALLER_ID = "caller_id"
    LIST = "list"
    VARIANT = "variant"
    DISPOSITION_CODE = "disposition_code"
    HOUR_OF_DAY = "hour_of_day"
    WEEKDAY_HOUR = "weekday_hour"


SCOPE_BREAKDOWNS = (BreakdownBy.AGENT, BreakdownBy.TEAM, BreakdownBy.CAMPAIGN,
                    BreakdownBy.CALLER_ID, BreakdownBy.LIST, BreakdownBy.VARIANT)
HOUR_KPIS = ("connect_rate", "conversion_rate")
"""The KPIs of the heatmap cells, each with its Wilson interval."""

KpiValues = dict[str, float | None]
LiveAgents = Mapping[str, Mapping[str, Any]]


Comparison = TypedDict("Comparison", {
    "from": str, "to": str,
    "exact": bool,  # false: the range was widened to what is kept (`readable_comparison`)
    "kpis": KpiValues,
    "change": dict[str, float | None],        # value − comparison (None where either is None)
    "change_ratio": dict[str, float | None],  # (value − comparison) ÷ comparison (None: 0/None)
})
"""The range a point is compared with, its KPIs and the change."""
SeriesPoint = TypedDict("SeriesPoint", {
    "from": str, "to": str, "kpis": KpiValues, "compare": Comparison}, total=False)
"""One step of a series: its range (clipped to the request) and KPIs."""


class BreakdownRow(TypedDict):
    rank: int
    id: str
    scope: str
    kpis: KpiValues


class CodeRow(TypedDict):
    """Wrap-ups with one `disposition_code` (the center's own codes, contract 1.1)."""

    rank: int
    code: str
    wrapups: int
    share: float | None
    """Of all wrap-ups of the scope in the range (those without a code included)."""


class HourCell(TypedDict, total=False):
    hour: int
    weekday: int  # 0 = Monday (weekday_hour only)
    attempts: int       # the connect rate's denominator (completed attempts)
    connected: int
    live_contacts: int  # the conversion rate's denominator (connected + inbound offered)
    conversions: int
    connect_rate: float | None
    connect_rate_ci: list[float] | None
    conversion_rate: float | None
    conversion_rate_ci: list[float] | None
    kpis: KpiValues


class Bucket(NamedTuple):
    """A bucket hash: `m` (hour of minutes), `h` (UTC day of hours) or `d` (a local day), and
    its id (bucket start ms, or the local date `YYYY-MM-DD`)."""

    kind: str
    ident: int | str


class HistoryError(WindowError):
    """A history request that cannot be answered (an HTTP 400)."""


# -- planning: which fields of which bucket hashes make up each range -------------------------

def _cells(d_minutes: Sequence[int], d_hours: Sequence[int], d_days: Sequence[int],
           tz: ZoneInfo) -> list[tuple[Bucket, str]]:
    out = [(Bucket("m", floor_to(m, HOUR_MS)), str((m % HOUR_MS) // MINUTE_MS)) for m in d_minutes]
    out += [(Bucket("h", floor_to(h, DAY_MS)), str((h % DAY_MS) // HOUR_MS)) for h in d_hours]
    for start in d_days:
        day = local_day_of(start, tz)
        out.append((Bucket("d", day.date), str(day.day)))
    return out


class Plan(NamedTuple):
    """The script's plan for a list of target sums (ranges or heatmap cells)."""

    buckets: list[Bucket]
    groups: list[list[list[Any]]]
    targets: int


def plan_for(targets: Sequence[Sequence[tuple[Bucket, str]]]) -> Plan:
    """Each target is a list of (bucket, field index); the plan reads each bucket once."""
    need: defaultdict[Bucket, defaultdict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for t, cells in enumerate(targets):
        for bucket, index in cells:
            need[bucket][index].append(t)
    buckets = sorted(need, key=lambda b: (b.kind, str(b.ident)))
    return Plan(buckets, [[[i, ts] for i, ts in need[b].items()] for b in buckets], len(targets))


def range_cells(r: Range, tz: ZoneInfo) -> list[tuple[Bucket, str]]:
    d = decompose(r, tz)
    return _cells(d.minutes, d.hours, d.days, tz)


async def sums(store: Store, scopes: Sequence[str], plan: Plan, counters: tuple[str, ...]
               ) -> dict[str, list[dict[str, float]]]:
    """scope → per target, the sums of `counters`: summed inside Redis, chunks of scopes per
    script call, all calls in one pipelined round trip."""
    if not scopes or not plan.buckets or not counters:
        return {s: [{} for _ in range(plan.targets)] for s in scopes}
    layout = store.layout

    def key(scope: str, b: Bucket) -> str:
        if b.kind == "m":
            return layout.minute_key(scope, int(b.ident))
        if b.kind == "h":
            return layout.hour_key(scope, int(b.ident))
        return layout.day_key(scope, str(b.ident))

    argv = json.dumps({"counters": list(counters), "groups": plan.groups,
                       "n": plan.targets * len(counters)}, separators=(",", ":"))
    per_scope = sum(len(g) for g in plan.groups) * len(counters)
    chunk = max(1, FIELDS_PER_CALL // max(per_scope, 1))
    script = store.redis.register_script(WINDOW_SUMS_LUA)
    pipe = store.redis.pipeline(transaction=False)
    for i in range(0, len(scopes), chunk):
        keys = [key(s, b) for s in scopes[i:i + chunk] for b in plan.buckets]
        await script(keys=keys, args=[argv], client=pipe)
    flat = [float(v) for part in await pipe.execute() for v in part.split()]
    n, per = len(counters), plan.targets * len(counters)
    out: dict[str, list[dict[str, float]]] = {}
    for k, scope in enumerate(scopes):
        row = flat[k * per:(k + 1) * per]
        out[scope] = [dict(zip(counters, row[t * n:(t + 1) * n], strict=True)) for t in range(plan.targets)]
    return out


class LiveMembers(NamedTuple):
    """scope → the logged-in agents whose open state counts in it, and the earliest start of
    their current states (no open time before it)."""

    agents: dict[str, dict[str, Any]]
    earliest: dict[str, int]


AGENT_TIME_COUNTERS = frozenset({"staffed_ms", *STATE_COUNTERS.values()})
"""The counters open agent time adds to (`add_open_time`); other KPIs need no live state."""


async def open_time_of(store: Store, counters: Sequence[str], only: Scope | None = None) -> LiveMembers:
    """The live agents a read needs for open agent time: none unless a requested counter is
    agent time; with `only`, just that scope's agents."""
    if not any(c in AGENT_TIME_COUNTERS for c in counters):
        return LiveMembers({}, {})
    live = (await store.live())[0]
    if only is not None:
        live = {a: v for a, v in live.items() if only.includes_live_agent(a, dict(v))}
    return live_members(live)


def live_members(live_agents: LiveAgents) -> LiveMembers:
    """Logged-in agents grouped by the scopes their open time counts in
    (`Scope.includes_live_agent`), once per request: checking every live agent for every scope
    and every point cost seconds at 5,000 agents (a 13-month daily series, a ranking)."""
    out: defaultdict[str, dict[str, Any]] = defaultdict(dict)
    for agent_id, a in live_agents.items():
        candidates = [Scope("center"), Scope("agent", agent_id)]
        candidates += [Scope(kind, a[kind]) for kind in ("team", "campaign") if a.get(kind)]
        for scope in candidates:
            if scope.includes_live_agent(agent_id, dict(a)):
                out[str(scope)][agent_id] = a
    return LiveMembers(dict(out), {s: min(a["since"] for a in m.values()) for s, m in out.items()})


def add_open(c: dict[str, float], scope: Scope, r: Range, now_ms: int, members: LiveMembers) -> None:
    """Open agent time of the scope's logged-in agents over `r` (`add_open_time`)."""
    key = str(scope)
    if key in members.agents and r.end > members.earliest[key] and r.start < now_ms:
        add_open_time(c, scope, r, now_ms, members.agents[key])


def parse_kpis(text: str | None, default: Sequence[str]) -> tuple[str, ...]:
    """A comma-separated list of catalog KPI names (ratios and counts)."""
    names = tuple(k.strip() for k in (text or "").split(",") if k.strip()) or tuple(default)
    unknown = [k for k in names if k not in KPI_BY_NAME]
    if unknown:
        raise HistoryError(f"unknown KPI {unknown[0]!r}; see /api/v1/kpis for the catalog names")
    if len(names) > MAX_KPIS:
        raise HistoryError(f"at most {MAX_KPIS} KPIs per request")
    return names


def compute(kpis: Sequence[str], counters: Mapping[str, float]) -> KpiValues:
    """The KPIs from one range's own sums (`stream.kpi.catalog`: never an average of averages)."""
    return {k: KPI_BY_NAME[k].compute(counters) for k in kpis}


# -- series -----------------------------------------------------------------------------------

def _wall(ts_ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz)


def _instant(wall: datetime, tz: ZoneInfo) -> int:
    return int(wall.replace(tzinfo=tz).timestamp() * 1000)


def step_floor(ts_ms: int, step: Step, tz: ZoneInfo) -> int:
    """The start of the local step containing `ts_ms`."""
    if step in FIXED_STEP_MS:
        size = FIXED_STEP_MS[step]
        offset = int(_wall(ts_ms, tz).utcoffset().total_seconds() * 1000)  # type: ignore[union-attr]
        return floor_to(ts_ms + offset, size) - offset
    d = local_date(ts_ms, tz)
    if step is Step.WEEK:
        d -= timedelta(days=d.weekday())
    elif step is Step.MONTH:
        d = d.replace(day=1)
    return local_start(d, tz)


def step_shift(ts_ms: int, step: Step, k: int, tz: ZoneInfo) -> int:
    """`ts_ms` moved by `k` steps (calendar steps move the local date, keeping the wall time)."""
    if step in FIXED_STEP_MS:
        return ts_ms + k * FIXED_STEP_MS[step]
    wall = _wall(ts_ms, tz).replace(tzinfo=None)
    if step is Step.MONTH:
        first = add_months(wall.date(), k)
        day = min(wall.day, _month_days(first.year, first.month))
        return _instant(wall.replace(year=first.year, month=first.month, day=day), tz)
    return _instant(wall + timedelta(days=k * (7 if step is Step.WEEK else 1)), tz)


def _month_days(year: int, month: int) -> int:
    first = datetime(year, month, 1)
    return ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day


def _year_back(ts_ms: int, tz: ZoneInfo) -> int:
    wall = _wall(ts_ms, tz).replace(tzinfo=None)
    day = min(wall.day, _month_days(wall.year - 1, wall.month))
    return _instant(wall.replace(year=wall.year - 1, day=day), tz)


def series_ranges(r: Range, step: Step, tz: ZoneInfo) -> list[Range]:
    """The points of a series: local steps from the one containing `r.start`, each clipped to
    `r` (so only the first and last may be partial)."""
    out: list[Range] = []
    start = step_floor(r.start, step, tz)
    k = 0
    while True:
        lo, hi = step_shift(start, step, k, tz), step_shift(start, step, k + 1, tz)
        if lo >= r.end:
            return out
        out.append(Range(max(lo, r.start), min(hi, r.end)))
        if len(out) > MAX_POINTS:
            raise HistoryError(f"a series may have at most {MAX_POINTS} points; use a longer step")
        k += 1


def comparison_ranges(points: list[Range], r: Range, step: Step, compare: Compare,
                      tz: ZoneInfo) -> list[Range]:
    """The range each point is compared with."""
    if compare is Compare.PREVIOUS_PERIOD:
        n = len(points)
        return [Range(step_shift(p.start, step, -n, tz), step_shift(p.end, step, -n, tz))
                for p in points]
    if compare is Compare.PREVIOUS_WEEK:
        return [Range(step_shift(p.start, Step.DAY, -7, tz), step_shift(p.end, Step.DAY, -7, tz))
                for p in points]
    return [Range(_year_back(p.start, tz), _year_back(p.end, tz)) for p in points]


def readable_comparison(o: Range, step: Step, now_ms: int, tz: ZoneInfo) -> Range:
    """The comparison range, or where it cannot be read to the minute (a partial point compared
    with a week or a year ago: its end lies where minute buckets are gone) its end rounded down
    to the whole hour, or where even that cannot be read the whole step it lies in."""
    candidates = [o, Range(o.start, floor_to(o.end, HOUR_MS))]
    first = step_floor(o.start, step, tz)
    candidates.append(Range(first, step_shift(first, step, 1, tz)))
    for c in candidates:
        if c.end <= c.start:
            continue
        try:
            return check_readable(c, now_ms, tz)
        except WindowError:
            continue
    raise HistoryError(f"the comparison range {format_ts(o.start)}..{format_ts(o.end)} cannot be "
                       "read any more (day buckets are kept 400 days, hour buckets 35 days, minute "
                       "buckets 48 h: steps shorter than an hour compare only within 48 h)")


def _change(now: KpiValues, before: KpiValues) -> tuple[dict[str, float | None], dict[str, float | None]]:
    diff: dict[str, float | None] = {}
    ratio: dict[str, float | None] = {}
    for k, v in now.items():
        b = before.get(k)
        diff[k] = None if v is None or b is None else v - b
        ratio[k] = None if v is None or not b else (v - b) / b
    return diff, ratio


async def series(store: Store, scope: Scope, r: Range, step: Step, kpis: tuple[str, ...],
                 now_ms: int, compare: Compare | None = None) -> list[SeriesPoint]:
    """One point per local step of `r`, KPIs from each step's own sums (open agent time up to
    now included, as `/api/v1/kpis` counts it)."""
    tz = store.layout.tz
    points = series_ranges(r, step, tz)
    for p in points:
        try:
            check_readable(p, now_ms, tz)
        except WindowError as exc:
            raise HistoryError(f"the point {format_ts(p.start)}..{format_ts(p.end)}: {exc}") from exc
    others: list[Range] = []
    exact: list[bool] = []
    if compare:
        for o in comparison_ranges(points, r, step, compare, tz):
            readable = readable_comparison(o, step, now_ms, tz)
            others.append(readable)
            exact.append(readable == o)
    ranges = [*points, *others]
    counters = counters_of(kpis)
    got = (await sums(store, [str(scope)], plan_for([range_cells(x, tz) for x in ranges]),
                      counters))[str(scope)]
    members = await open_time_of(store, counters, scope)
    values = []
    for x, c in zip(ranges, got, strict=True):
        add_open(c, scope, x, now_ms, members)
        values.append(compute(kpis, c))
    out: list[SeriesPoint] = []
    for i, p in enumerate(points):
        point: SeriesPoint = {"from": format_ts(p.start), "to": format_ts(p.end), "kpis": values[i]}
        if compare:
            o = others[i]
            before = values[len(points) + i]
            diff, ratio = _change(values[i], before)
            point["compare"] = {"from": format_ts(o.start), "to": format_ts(o.end),
                                "exact": exact[i], "kpis": before, "change": diff,
                                "change_ratio": ratio}
        out.append(point)
    return out


# -- breakdowns -------------------------------------------------------------------------------

def months_of(r: Range, tz: ZoneInfo) -> list[str]:
    """The local months `r` touches (the month index keys to read)."""
    first, last = local_date(r.start, tz).replace(day=1), local_date(r.end - 1, tz).replace(day=1)
    out = []
    while first <= last:
        out.append(month_label(first))
        first = add_months(first, 1)
    return out


class SortKey(NamedTuple):
    kpi: str
    descending: bool


def parse_sort(text: str | None, kpis: tuple[str, ...]) -> SortKey:
    """`<kpi>` or `<kpi>:desc` (highest first, the default) or `<kpi>:asc`."""
    if not text:
        return SortKey(kpis[0], True)
    name, _, order = text.partition(":")
    if name not in kpis:
        raise HistoryError(f"sort by one of the requested KPIs ({', '.join(kpis)}); got {name!r}")
    if order not in ("", "asc", "desc"):
        raise HistoryError("sort order is 'asc' or 'desc'")
    return SortKey(name, order != "asc")


def _ranked(items: list[tuple[str, KpiValues]], sort: SortKey) -> list[tuple[str, KpiValues]]:
    """Sorted by the KPI (None always last), ties by id."""
    def key(item: tuple[str, KpiValues]) -> tuple[bool, float, str]:
        v = item[1].get(sort.kpi)
        return (v is None, -(v or 0.0) if sort.descending else (v or 0.0), item[0])
    return sorted(items, key=key)


class Breakdown(NamedTuple):
    rows: list[BreakdownRow]
    total_rows: int
    shown: KpiValues
    """The KPIs over the summed counters of the rows shown (e.g. the top 10: a benchmark)."""
    everyone: KpiValues
    """The KPIs over the summed counters of every row."""


async def breakdown(store: Store, by: BreakdownBy, r: Range, kpis: tuple[str, ...],
                    sort: SortKey, limit: int, now_ms: int,
                    visible: Callable[[Scope], bool] | None = None) -> Breakdown:
    """The scopes of kind `by` with data in `r` (and `visible`, when given: what a restricted
    token may read), ranked by a KPI over `r`'s own sums."""
    tz = store.layout.tz
    kind = by.value
    ids = set(await store.month_ids(kind, months_of(r, tz)))
    ids |= set((await store.scopes(now_ms)).get(kind, []))  # data written before the month index
    if len(ids) > MAX_SCOPES:
        raise HistoryError(f"{len(ids)} {kind} scopes have data in the range; a breakdown reads "
                           f"at most {MAX_SCOPES}")
    scopes = [Scope(kind, i) for i in sorted(ids)]
    if visible is not None:
        scopes = [s for s in scopes if visible(s)]
    counters = counters_of(kpis)
    plan = plan_for([range_cells(r, tz)])
    if len(scopes) * len(plan.buckets) > MAX_BUCKET_READS:
        raise HistoryError(
            f"this breakdown would read {len(scopes)} {kind} scopes × {len(plan.buckets)} bucket "
            f"hashes; at most {MAX_BUCKET_READS:,} per request: use a shorter range")
    got = await sums(store, [str(s) for s in scopes], plan, counters)
    members = await open_time_of(store, counters)
    per: list[tuple[str, KpiValues]] = []
    sums_of: dict[str, dict[str, float]] = {}
    for s in scopes:
        c = got[str(s)][0]
        add_open(c, s, r, now_ms, members)
        if not any(c.values()):
            continue  # no data for these KPIs in the range
        sums_of[s.ident] = c
        per.append((s.ident, compute(kpis, c)))
    ranked = _ranked(per, sort)
    rows: list[BreakdownRow] = [{"rank": i + 1, "id": ident, "scope": f"{kind}:{ident}", "kpis": v}
                                for i, (ident, v) in enumerate(ranked[:limit])]
    return Breakdown(rows, len(ranked), compute(kpis, _total(sums_of[i] for i, _ in ranked[:limit])),
                     compute(kpis, _total(sums_of.values())))


def _total(parts: Any) -> dict[str, float]:
    out: defaultdict[str, float] = defaultdict(float)
    for c in parts:
        for k, v in c.items():
            out[k] += v
    return dict(out)


async def disposition_codes(store: Store, scope: Scope, r: Range, limit: int) -> tuple[list[CodeRow], int]:
    """The scope's wrap-ups per disposition code over `r`, most used first (and how many codes
    in all). The codes are not known in advance, so the scope's bucket hashes are read whole
    (one scope: at most 400 small day hashes and a few hour and minute hashes)."""
    c = (await store.window_counters([str(scope)], r))[str(scope)]
    codes = sorted(((name[len(WRAPUP_CODE_PREFIX):], int(v)) for name, v in c.items()
                    if name.startswith(WRAPUP_CODE_PREFIX) and v), key=lambda x: (-x[1], x[0]))
    total = c.get("wrapups", 0)
    rows: list[CodeRow] = [{"rank": i + 1, "code": code, "wrapups": n,
                            "share": n / total if total else None}
                           for i, (code, n) in enumerate(codes[:limit])]
    return rows, len(codes)


def hour_cells(r: Range, weekday: bool, tz: ZoneInfo) -> tuple[list[tuple[int, int]], list[list[tuple[Bucket, str]]]]:
    """The heatmap cells ((weekday or -1, local hour)) and the buckets of each: the hour and
    minute buckets of `r` (never day buckets, which cannot be split by hour), each put in the
    cell of its local start. Refused where a bucket does not lie in one local hour (a zone whose
    offset is not a whole number of hours)."""
    d = decompose(r)
    cells: dict[tuple[int, int], list[tuple[Bucket, str]]] = {}
    for start, size, (bucket, index) in [
            *((m, MINUTE_MS, c) for m, c in zip(d.minutes, _cells(d.minutes, (), (), tz), strict=True)),
            *((h, HOUR_MS, c) for h, c in zip(d.hours, _cells((), d.hours, (), tz), strict=True))]:
        wall = _wall(start, tz)
        if size == HOUR_MS and (wall.minute or wall.second):
            raise HistoryError(
                f"hour-of-day breakdowns need whole-hour offsets from UTC; {tz} is "
                f"{wall.utcoffset()} at {format_ts(start)}")
        key = (wall.weekday() if weekday else -1, wall.hour)
        cells.setdefault(key, []).append((bucket, index))
    keys = sorted(cells)
    return keys, [cells[k] for k in keys]


async def hour_profile(store: Store, scope: Scope, r: Range, weekday: bool, kpis: tuple[str, ...],
                       now_ms: int) -> list[HourCell]:
    """Connect rate and conversion rate (and `kpis`) per local hour of day (or weekday × hour)
    over `r`, with the attempts behind each cell and Wilson 95 % intervals: when to call."""
    tz = store.layout.tz
    if r.start < now_ms - HOUR_READABLE_MS:
        raise HistoryError("hour-of-day breakdowns read hour buckets: the window may reach at "
                           "most 35 days back")
    keys, cells = hour_cells(r, weekday, tz)
    names = tuple(dict.fromkeys((*HOUR_KPIS, *kpis)))
    counters = counters_of(names)
    got = (await sums(store, [str(scope)], plan_for(cells), counters))[str(scope)]
    out: list[HourCell] = []
    for (wd, hour), c in zip(keys, got, strict=True):
        values = compute(names, c)
        cell: HourCell = {"hour": hour}
        if weekday:
            cell["weekday"] = wd
        cell.update({
            "attempts": int(_terms(c, KPI_BY_NAME["connect_rate"].denominator)),
            "connected": int(c.get("connected", 0)),
            "live_contacts": int(_terms(c, KPI_BY_NAME["conversion_rate"].denominator)),
            "conversions": int(c.get("conversions", 0)),
            "connect_rate": values["connect_rate"],
            "connect_rate_ci": rate_interval("connect_rate", c),
            "conversion_rate": values["conversion_rate"],
            "conversion_rate_ci": rate_interval("conversion_rate", c),
            "kpis": {k: values[k] for k in kpis},
        })
        out.append(cell)
    return out


def _terms(c: Mapping[str, float], names: Sequence[str]) -> float:
    return sum(c.get(n, 0.0) for n in names)


def rate_interval(kpi: str, c: Mapping[str, float]) -> list[float] | None:
    """Wilson 95 % interval of a ratio-of-counts KPI: its numerator as successes out of its
    denominator. A cell's connects are counted at connect time and its attempts at completion,
    so a connect can sit in the hour after its attempt: successes are capped at the trials."""
    k = KPI_BY_NAME[kpi]
    trials = int(_terms(c, k.denominator))
    i = wilson_interval(min(int(_terms(c, k.numerator)), trials), trials)
    return None if i is None else [i.low, i.high]


def rank_cells(cells: list[HourCell], sort: SortKey | None, limit: int) -> list[HourCell]:
    """Cells in time order, or ranked by a KPI (None last) and cut to `limit`."""
    if sort is None:
        return cells[:limit]
    def value(c: HourCell) -> float | None:
        return c.get(sort.kpi, c["kpis"].get(sort.kpi))  # type: ignore[return-value]
    ranked = sorted(cells, key=lambda c: (value(c) is None,
                                          -(value(c) or 0.0) if sort.descending else (value(c) or 0.0)))
    return ranked[:limit]
