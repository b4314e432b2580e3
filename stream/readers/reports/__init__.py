"""Reports: a period's KPIs against the previous period and the targets, agents and teams
ranked, the hourly profile, compliance and experiments (`docs/reports.md`).

A report is built from the API's own answers (`kpis_payload`, `series_payload`, the history
breakdowns, `experiments_payload`), so its numbers are the API's numbers; `render` turns the one
`Report` dict into HTML (self-contained, charts drawn by the vendored uPlot), CSV, XLSX or
Markdown, and `schedule` runs the `[[reports]]` of the configuration file inside `callkpi serve`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from stream.contract import format_ts
from stream.kpi.catalog import KPI_BY_NAME, compute_all
from stream.kpi.scopes import Scope, parse_scope
from stream.kpi.targets import attainment, expand_scopes, status_of
from stream.kpi.windows import HOUR_MS, MINUTE_MS, Range, WindowError, floor_to, local_start
from stream.readers import history
from stream.readers.api import ApiContext, BadRequest, breakdown_payload, kpis_payload, require, series_payload
from stream.readers.auth import OPEN, Grant


class Period(StrEnum):
    """A report's period, in the center's local time (weeks start on Monday)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    HOUR = "hour"      # scheduled reports only: for trying a schedule or a webhook out
    MINUTE = "minute"  # idem (and the scheduling tests)


STEP_OF = {Period.DAY: history.Step.DAY, Period.WEEK: history.Step.WEEK,
           Period.MONTH: history.Step.MONTH, Period.HOUR: history.Step.HOUR}
CHART_STEP = {Period.DAY: history.Step.HOUR, Period.WEEK: history.Step.DAY,
              Period.MONTH: history.Step.DAY, Period.HOUR: history.Step.MIN15,
              Period.MINUTE: history.Step.MIN15}
REPORT_KPIS = ("attempts_completed", "connected", "connect_rate", "conversions", "conversion_rate",
               "aht_seconds", "avg_talk_seconds", "abandon_rate", "occupancy", "revenue")
"""The KPIs of a report's main table (every catalog KPI is in the JSON answer's `all_kpis`)."""
CHART_KPIS = ("connect_rate", "conversion_rate", "aht_seconds")
RANK_KPIS = ("handled", "conversions", "conversion_rate", "aht_seconds", "occupancy")
RANK_LIMIT = 20


class PeriodSpan(NamedTuple):
    period: Period
    label: str
    range: Range
    previous: Range


def period_range(period: Period, at_ms: int, tz: ZoneInfo) -> Range:
    """The local period that contains `at_ms`."""
    if period is Period.MINUTE:
        start = floor_to(at_ms, MINUTE_MS)
        return Range(start, start + MINUTE_MS)
    step = STEP_OF[period]
    start = history.step_floor(at_ms, step, tz)
    return Range(start, history.step_floor(history.step_shift(start, step, 1, tz) + 1, step, tz))


def label_of(period: Period, r: Range, tz: ZoneInfo) -> str:
    """A period's name in file names and markers: 2026-12-01, 2026-W49, 2026-12, 2026-12-01T14."""
    local = datetime.fromtimestamp(r.start / 1000, tz)
    if period is Period.DAY:
        return local.date().isoformat()
    if period is Period.WEEK:
        y, w, _ = local.isocalendar()
        return f"{y}-W{w:02d}"
    if period is Period.MONTH:
        return f"{local.year}-{local.month:02d}"
    if period is Period.HOUR:
        return local.strftime("%Y-%m-%dT%H")
    return local.strftime("%Y-%m-%dT%H%M")


def span_of(period: Period, at_ms: int, tz: ZoneInfo) -> PeriodSpan:
    r = period_range(period, at_ms, tz)
    prev = period_range(period, r.start - 1, tz)
    return PeriodSpan(period, label_of(period, r, tz), r, prev)


def last_finished(period: Period, now_ms: int, tz: ZoneInfo) -> PeriodSpan:
    """The newest period that has ended at `now_ms` (what a schedule produces)."""
    return span_of(period, period_range(period, now_ms, tz).start - 1, tz)


def requested_span(period: str, day: str | None, now_ms: int, tz: ZoneInfo) -> PeriodSpan:
    """`--period`/`period=` and `--date`/`date=` (any local date inside the period; default: the
    last finished period)."""
    try:
        p = Period(period or "day")
    except ValueError:
        raise BadRequest(f"bad 'period': {period!r}; use day, week or month") from None
    if not day:
        return last_finished(p, now_ms, tz)
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise BadRequest(f"bad 'date': {day!r}; use YYYY-MM-DD (a local date in the period)") from None
    span = span_of(p, local_start(d, tz) + 1, tz)
    if span.range.start >= now_ms:
        raise BadRequest(f"the {p.value} of {day} has not started yet")
    return span


def _change(now: dict[str, Any], before: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k, v in now.items():
        b = before.get(k)
        out[k] = v - b if isinstance(v, int | float) and isinstance(b, int | float) else None
    return out


def _range_params(r: Range) -> dict[str, str]:
    return {"from": str(r.start), "to": str(r.end)}


def _end(span: PeriodSpan, now_ms: int) -> int:
    """The period's end, or now (to the minute: what buckets can answer) while it runs."""
    return span.range.end if span.range.end <= now_ms else max(floor_to(now_ms, MINUTE_MS), span.range.start + MINUTE_MS)


async def _scope_block(ctx: ApiContext, scope: Scope, span: PeriodSpan, grant: Grant,
                       notes: dict[str, str]) -> dict[str, Any]:
    end = _end(span, ctx.now_ms())
    cur = await kpis_payload(ctx, {"scope": str(scope), "from": str(span.range.start), "to": str(end)}, grant)
    prev_end = span.previous.end
    if end < span.range.end:  # as far into the previous period (to the hour: what is kept)
        prev_end = max(floor_to(span.previous.start + (end - span.range.start), HOUR_MS),
                       span.previous.start + HOUR_MS)
    try:
        prev = (await kpis_payload(ctx, {"scope": str(scope),
                                         **_range_params(Range(span.previous.start, prev_end))}, grant))["kpis"]
    except WindowError as exc:  # e.g. the month before a month 13 months back: no longer kept
        prev = {}
        notes["previous"] = f"the previous {span.period.value} cannot be answered: {exc}"
    return {"scope": str(scope), "kpis": cur["kpis"], "previous": prev,
            "change": _change(cur["kpis"], prev), "complete": end == span.range.end}


def _targets(ctx: ApiContext, values: dict[str, dict[str, Any]], known: dict[str, list[str]]
             ) -> list[dict[str, Any]]:
    """Each configured target on the report's scopes and campaigns, judged on the period's value
    (not on the target's own window: a report looks back at a whole period)."""
    config = getattr(ctx.extensions, "config", None)
    if config is None:
        return []
    rows = []
    for t in config.targets:
        for s in expand_scopes(t.scope, known, {}):
            if s not in values:
                continue
            value = values[s].get(t.kpi)
            rows.append({"name": t.name, "kpi": t.kpi, "scope": s, "goal": t.goal,
                         "direction": t.direction, "value": value,
                         "attainment": attainment(t.goal, value, t.direction),
                         "status": status_of(t, value)})
    return rows


async def _ranking(ctx: ApiContext, by: history.BreakdownBy, r: Range, grant: Grant) -> dict[str, Any]:
    """`GET /api/v1/breakdown` of the center by agent or team (a restricted token: its rows)."""
    answer = await breakdown_payload(ctx, {"scope": "center", "by": by.value, **_range_params(r),
                                           "kpis": ",".join(RANK_KPIS), "sort": "conversions:desc",
                                           "limit": str(RANK_LIMIT)}, grant)
    return {"by": by.value, "sort": answer["sort"], "kpis": list(RANK_KPIS), "rows": answer["rows"],
            "total_rows": answer["total_rows"]}


def _compliance(ctx: ApiContext, campaigns: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The abandon rate of each campaign over the period against its limit."""
    config = getattr(ctx.extensions, "config", None)
    rows = []
    for cid, values in sorted(campaigns.items()):
        limit = config.compliance.limit_for(cid) if config is not None else 0.03
        rate = values.get("abandon_rate")
        status = "no_data" if rate is None else ("breach" if rate > limit else "ok")
        rows.append({"campaign_id": cid, "abandon_rate": rate, "limit": limit, "status": status,
                     "abandoned": values.get("abandoned"), "connected": values.get("connected")})
    return rows


async def _series(ctx: ApiContext, scope: Scope, r: Range, period: Period, grant: Grant,
                  notes: dict[str, str]) -> dict[str, Any]:
    """The trend charts' series, by hour for a day, by day otherwise; by day when the hours are
    no longer kept; without the comparison when that is no longer kept."""
    steps = [CHART_STEP[period]] + ([history.Step.DAY] if CHART_STEP[period] is not history.Step.DAY else [])
    problem = ""
    for step in steps:
        for compare in ("previous_period", ""):
            try:
                return await series_payload(ctx, {"scope": str(scope), **_range_params(r), "step": step.value,
                                                  "kpis": ",".join(CHART_KPIS), "compare": compare}, grant)
            except WindowError as exc:
                problem = str(exc)
    notes["series"] = f"no trend series: {problem}"
    return {"scope": str(scope), "step": steps[-1].value, "kpis": list(CHART_KPIS), "points": []}


async def build_report(ctx: ApiContext, span: PeriodSpan, scopes: list[str] | None = None,
                       grant: Grant = OPEN) -> dict[str, Any]:
    """The report of one period for the given scopes (default: center), as the token sees it."""
    wanted = [parse_scope(s) for s in (scopes or ["center"])]
    for s in wanted:
        await require(ctx, grant, s)
    now = ctx.now_ms()
    end = _end(span, now)
    r = Range(span.range.start, end)
    notes: dict[str, str] = {}
    """Sections that cannot be answered for an old period (hour buckets are kept 35 days)."""
    blocks = [await _scope_block(ctx, s, span, grant, notes) for s in wanted]
    known = await ctx.store.scopes(now)
    series = await _series(ctx, wanted[0], r, span.period, grant, notes)
    try:
        hours = await history.hour_profile(ctx.store, wanted[0], r, False, history.HOUR_KPIS, now)
    except WindowError as exc:
        hours = []
        notes["hours"] = f"no hourly profile: {exc}"
    campaigns = [Scope("campaign", c) for c in known.get("campaign", []) if grant.matches("campaign", c)]
    campaign_values: dict[str, dict[str, Any]] = {}
    if campaigns:
        counters = await ctx.query.counters(campaigns, r, now)
        active = [c for c in campaigns if counters[c].get("attempts_completed") or counters[c].get("connected")]
        if ctx.extensions is not None:  # cost KPIs too, from the same sums
            values = await ctx.extensions.kpi_values(active, r, now, counters=counters)
        else:
            values = {c: compute_all(counters[c]) for c in active}
        campaign_values = {c.ident: values[c] for c in active}
    experiments: list[dict[str, Any]] = []
    config = getattr(ctx.extensions, "config", None)
    if config is not None and config.experiments:
        from stream.readers.experiments import experiments_payload
        try:
            experiments = (await experiments_payload(ctx, config.experiments, _range_params(r), grant))["experiments"]
        except WindowError as exc:  # experiments read hour buckets at most (35 days)
            notes["experiments"] = f"no experiments: {exc}"
    return {
        "title": f"Call center report — {span.period.value} {span.label}",
        "period": span.period.value, "label": span.label, "timezone": str(ctx.tz),
        "from": format_ts(span.range.start), "to": format_ts(span.range.end),
        "previous": {"from": format_ts(span.previous.start), "to": format_ts(span.previous.end)},
        "generated_at": format_ts(now), "complete": end == span.range.end, "notes": notes,
        "kpis": list(REPORT_KPIS), "scopes": blocks,
        "series_kpis": list(KPI_BY_NAME),
        "targets": _targets(ctx, {**{f"campaign:{c}": v for c, v in campaign_values.items()},
                                  **{b["scope"]: b["kpis"] for b in blocks}}, known),
        "agents": await _ranking(ctx, history.BreakdownBy.AGENT, r, grant),
        "teams": await _ranking(ctx, history.BreakdownBy.TEAM, r, grant),
        "hours": hours,
        "series": {"scope": series["scope"], "step": series["step"], "kpis": series["kpis"],
                   "points": series["points"]},
        "compliance": _compliance(ctx, campaign_values),
        "experiments": experiments,
    }


def summary_of(report: dict[str, Any]) -> str:
    """A few lines for a chat channel: the headline KPIs and their change."""
    from stream.readers.reports.render import fmt
    lines = [report["title"] + ("" if report["complete"] else " (so far)")]
    for b in report["scopes"]:
        parts = []
        for k in ("attempts_completed", "connect_rate", "conversion_rate", "aht_seconds"):
            parts.append(f"{k} {fmt(k, b['kpis'].get(k))} ({fmt(k, b['change'].get(k), change=True)})")
        lines.append(f"{b['scope']}: " + ", ".join(parts))
    breached = [t for t in report["targets"] if t["status"] in ("warn", "critical")]
    if breached:
        lines.append("targets missed: " + ", ".join(f"{t['name']} ({t['scope']})" for t in breached))
    return "\n".join(lines)
