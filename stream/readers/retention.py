"""`GET /api/v1/retention?scope=...&period=week|month`: buying and repeat customers, counted.

The sets of leads are intersected inside Redis (one script: ZCARD and ZINTER of the period's,
the previous and the one before's sets), so only counts leave the store: no lead_id reaches
this process's answers, a page or the API (definitions: `stream.kpi.retention`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from aiohttp import web

from stream.contract import format_ts
from stream.kpi.retention import (
    PERIODS,
    SCOPE_KINDS,
    Period,
    PeriodSpan,
    period_of,
    previous,
    retention_rate,
)
from stream.kpi.scopes import Scope, parse_scope
from stream.readers.api import BadRequest, json_response, require
from stream.readers.auth import OPEN, Grant, grant_of

COUNT_LUA = """
local function inter(a, b) return #redis.call('ZINTER', 2, a, b) end
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
        inter(KEYS[1], KEYS[2]), inter(KEYS[2], KEYS[3])}
"""
"""|S(P)|, |S(P−1)|, |S(P−2)|, |S(P) ∩ S(P−1)|, |S(P−1) ∩ S(P−2)|: counts only (ZINTER inside
the script, since ZINTERCARD needs Redis 7)."""


RetentionRow = TypedDict("RetentionRow", {
    "period": str, "from": str, "to": str, "complete": bool, "buying_customers": int,
    "repeat_customers": int, "previous_buying_customers": int,
    "retention_rate": float | None})


def _row(span: PeriodSpan, now: int, buying: int, repeat: int, before: int) -> RetentionRow:
    return {"period": span.id, "from": format_ts(span.start_ms), "to": format_ts(span.end_ms),
            "complete": span.end_ms <= now, "buying_customers": buying,
            "repeat_customers": repeat, "previous_buying_customers": before,
            "retention_rate": retention_rate(repeat, before)}


def _params(params: Mapping[str, str]) -> tuple[Scope, Period]:
    scope = parse_scope(params.get("scope"))
    if scope.kind not in SCOPE_KINDS:
        raise BadRequest(f"retention is kept for center and campaign:<id>, not {scope.kind}")
    period: Any = params.get("period", "week")
    if period not in PERIODS:
        raise BadRequest(f"unknown period {period!r}; use week or month")
    return scope, period


async def retention_payload(ctx: Any, params: Mapping[str, str],
                            grant: Grant = OPEN) -> dict[str, Any]:
    """The answer of `GET /api/v1/retention` (also printed by `callkpi retention`): the current
    period so far and the previous (complete) one."""
    scope, period = _params(params)
    await require(ctx, grant, scope)
    now = ctx.now_ms()
    current = period_of(period, now, ctx.tz)
    last = previous(period, current, ctx.tz)
    before = previous(period, last, ctx.tz)
    keys = [ctx.store.layout.retention_key(str(scope), period, s.id)
            for s in (current, last, before)]
    n_cur, n_last, n_before, rep_cur, rep_last = (
        int(x) for x in await ctx.store.redis.eval(COUNT_LUA, 3, *keys))
    return {"scope": str(scope), "period": period, "timezone": str(ctx.tz),
            "now": format_ts(now),
            "current": _row(current, now, n_cur, rep_cur, n_last),
            "previous": _row(last, now, n_last, rep_last, n_before)}


def routes(ctx: Any) -> web.RouteTableDef:
    r = web.RouteTableDef()

    @r.get("/api/v1/retention")
    async def retention(request: web.Request) -> web.Response:
        return json_response(await retention_payload(ctx, request.query, grant_of(request)))

    return r
