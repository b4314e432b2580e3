"""`GET /api/v1/experiments[/<name>]`: the configured A/B tests, read from the variant scopes.

Each variant's numbers are the window sums of its `variant:<id>` scope, exactly the counters
`/api/v1/kpis?scope=variant:<id>` reads; the statistics are `stream.kpi.experiments` (pure).
docs/experiments.md says how they are computed and what they do not protect against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from aiohttp import web

from stream.contract import format_ts
from stream.kpi.catalog import KPI_BY_NAME, compute_all
from stream.kpi.experiments import (
    Arm,
    Experiment,
    ExperimentResult,
    GuardrailCheck,
    VariantResult,
    counts_of,
    evaluate,
    is_ratio_of_counts,
)
from stream.kpi.scopes import Scope
from stream.kpi.targets import window_range
from stream.kpi.windows import (
    HOUR_MS,
    HOUR_READABLE_MS,
    MINUTE_READABLE_MS,
    Range,
    check_readable,
)
from stream.readers.api import NotFound, json_response, resolve_range
from stream.readers.auth import OPEN, Grant, grant_of


class GuardrailRow(TypedDict):
    kpi: str
    direction: str
    tolerance: float
    control: float | None
    value: float | None
    change: float | None
    p_value: float | None
    breached: bool


class VariantRow(TypedDict):
    variant: str
    control: bool
    successes: int
    trials: int
    rate: float | None
    interval: dict[str, float] | None
    lift: float | None
    p_value: float | None
    test: str
    needed_per_arm: int | None
    still_needed: int | None
    verdict: str
    guardrails: list[GuardrailRow]


ExperimentReport = TypedDict("ExperimentReport", {
    "name": str, "primary_kpi": str, "control": str, "minimum_detectable_effect": float,
    "campaigns": list[str], "window": str | None, "started": bool, "from": str | None,
    "to": str | None, "verdict": str, "variants": list[VariantRow]})
"""One experiment's answer (`from`/`to` None before its start)."""


def visible(grant: Grant, exp: Experiment) -> bool:
    """A restricted token sees an experiment when it may read the center, every variant scope,
    or (for an experiment declared on campaigns) every one of its campaigns."""
    if not grant.restricted or grant.matches("center"):
        return True
    if all(grant.matches("variant", v) for v in exp.variants):
        return True
    return bool(exp.campaigns) and all(grant.matches("campaign", c) for c in exp.campaigns)


def experiment_range(exp: Experiment, now_ms: int, tz: Any) -> Range | None:
    """The configured window ending now, clipped to the experiment's start and end, and to what
    the kept buckets answer exactly (a start more than 48 h back rounded up to its next whole
    hour, an end that far back down to its hour, nothing older than the hour retention); None
    before the start (nothing to read yet)."""
    start, end = window_range(exp.window, now_ms, tz)
    if exp.start is not None:
        start = max(start, int(exp.start.timestamp() * 1000))
    if exp.end is not None:
        end = min(end, int(exp.end.timestamp() * 1000))
    oldest_hour = -(-(now_ms - HOUR_READABLE_MS) // HOUR_MS) * HOUR_MS
    start = max(start, oldest_hour)
    if start < now_ms - MINUTE_READABLE_MS:
        start = -(-start // HOUR_MS) * HOUR_MS
    if end < now_ms - MINUTE_READABLE_MS:
        end = end // HOUR_MS * HOUR_MS
    return Range(start, end) if start < end else None


def _arm(exp: Experiment, counters: Mapping[str, float]) -> Arm:
    values = compute_all(counters)
    successes, trials = counts_of(exp.primary_kpi, counters)
    guard_values = {g.kpi: values.get(g.kpi) for g in exp.guardrails}
    guard_counts = {g.kpi: (counts_of(g.kpi, counters)
                            if is_ratio_of_counts(KPI_BY_NAME[g.kpi]) else None)
                    for g in exp.guardrails}
    return Arm(successes, trials, guard_values, guard_counts)  # type: ignore[arg-type]


def _guardrail_row(exp: Experiment, c: GuardrailCheck) -> GuardrailRow:
    g = next(x for x in exp.guardrails if x.kpi == c.kpi)
    return GuardrailRow(kpi=c.kpi, direction=g.direction, tolerance=g.tolerance,
                        control=c.control, value=c.value, change=c.change, p_value=c.p_value,
                        breached=c.breached)


def _variant_row(exp: Experiment, v: VariantResult) -> VariantRow:
    cmp = v.comparison
    interval = None if cmp.interval is None else {"low": cmp.interval.low,
                                                   "high": cmp.interval.high}
    return VariantRow(variant=v.variant, control=v.is_control, successes=v.successes,
                      trials=v.trials, rate=cmp.rate, interval=interval, lift=cmp.lift,
                      p_value=cmp.p_value, test=cmp.test, needed_per_arm=cmp.needed_per_arm,
                      still_needed=v.still_needed, verdict=v.verdict_text,
                      guardrails=[_guardrail_row(exp, c) for c in v.guardrails])


def report(result: ExperimentResult, r: Range | None, window: str | None) -> ExperimentReport:
    exp = result.experiment
    return {"name": exp.name, "primary_kpi": exp.primary_kpi, "control": exp.control,
            "minimum_detectable_effect": exp.minimum_detectable_effect,
            "campaigns": list(exp.campaigns), "window": window, "started": r is not None,
            "from": None if r is None else format_ts(r.start),
            "to": None if r is None else format_ts(r.end), "verdict": result.verdict_text,
            "variants": [_variant_row(exp, v) for v in result.variants]}


async def experiment_report(ctx: Any, exp: Experiment, now: int,
                            override: Range | None = None,
                            window: str | None = None) -> ExperimentReport:
    """One experiment's answer: its window (or the request's range), its variants' sums."""
    r = override if override is not None else experiment_range(exp, now, ctx.tz)
    if r is None:
        counters: dict[str, dict[str, float]] = {v: {} for v in exp.variants}
    else:
        check_readable(r, now, ctx.tz)  # whole local days further back: day buckets
        scopes = [Scope("variant", v) for v in exp.variants]
        sums = await ctx.query.counters(scopes, r, now)
        counters = {s.ident: c for s, c in sums.items()}
    result = evaluate(exp, {v: _arm(exp, counters[v]) for v in exp.variants})
    return report(result, r, window if override is not None else exp.window)


async def experiments_payload(ctx: Any, experiments: tuple[Experiment, ...],
                              params: Mapping[str, str], grant: Grant = OPEN,
                              name: str | None = None) -> dict[str, Any]:
    """The answer of `GET /api/v1/experiments` (one experiment when `name` is given; a name
    the token may not see is answered as unknown). Also printed by `callkpi experiments`."""
    now = ctx.now_ms()
    override: Range | None = None
    window = None
    if {"window", "from", "to"} & params.keys():
        window, override = resolve_range(dict(params), now, ctx.tz)
    shown = [e for e in experiments if visible(grant, e)]
    if name is not None:
        shown = [e for e in shown if e.name == name]
        if not shown:
            raise NotFound(f"no experiment {name!r} (GET /api/v1/experiments lists them)")
    reports = [await experiment_report(ctx, e, now, override, window) for e in shown]
    return {"now": format_ts(now), "experiments": reports}


def routes(ctx: Any, experiments: tuple[Experiment, ...]) -> web.RouteTableDef:
    r = web.RouteTableDef()

    @r.get("/api/v1/experiments")
    async def all_experiments(request: web.Request) -> web.Response:
        return json_response(await experiments_payload(ctx, experiments, request.query,
                                                       grant_of(request)))

    @r.get("/api/v1/experiments/{name}")
    async def one_experiment(request: web.Request) -> web.Response:
        body = await experiments_payload(ctx, experiments, request.query, grant_of(request),
                                         request.match_info["name"])
        return json_response(body["experiments"][0] | {"now": body["now"]})

    return r
