"""The HTTP API (`/api/v1/...`), Prometheus `/metrics`, the live push stream and the wallboard."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from redis.exceptions import RedisError

from stream.contract import format_ts, parse_ts
from stream.kpi.scopes import Scope, ScopeError, parse_scope
from stream.kpi.windows import Range, WindowError, check_range, check_readable, resolve_window
from stream.readers import history
from stream.readers.query import Query
from stream.store.redis_store import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPENAPI_PATH = Path(__file__).with_name("openapi.json")
HEALTH_TIMEOUT_S = 2.0
SSE_MIN_INTERVAL_S = 0.5


@dataclass
class ApiContext:
    store: Store
    query: Query
    tz: ZoneInfo
    call_expiry_ms: int
    token: str = ""
    extensions: Any = None  # targets/compliance/cost/exporter, attached by the CLI
    clock: Callable[[], float] = time.time

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


class BadRequest(ValueError):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, allow_nan=False))


def resolve_range(q: dict[str, str], now_ms: int, tz: ZoneInfo) -> tuple[str | None, Range]:
    """`window=` or `from=`/`to=` (RFC 3339 or epoch ms) → the range to read."""
    window = q.get("window")
    if window and ("from" in q or "to" in q):
        raise BadRequest("give either 'window' or 'from' and 'to', not both")
    if window:
        return window, check_readable(resolve_window(window, now_ms, tz), now_ms, tz)
    if "from" in q or "to" in q:
        if "from" not in q or "to" not in q:
            raise BadRequest("'from' and 'to' go together")
        try:
            start, end = parse_ts(_num_or_str(q["from"])), parse_ts(_num_or_str(q["to"]))
        except ValueError as exc:
            raise BadRequest(f"bad 'from'/'to': {exc}; use RFC 3339 with an offset") from exc
        return None, check_range(start, end, now_ms, tz)
    return "15m", resolve_window("15m", now_ms, tz)


def _num_or_str(v: str) -> object:
    return int(v) if v.lstrip("-").isdigit() else v


def _errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (BadRequest, ScopeError, WindowError) as exc:
            return _json({"error": str(exc)}, status=400)
    return wrapped


async def kpis_payload(ctx: ApiContext, params: dict[str, str]) -> dict[str, Any]:
    """The answer of `GET /api/v1/kpis` (also printed by `callkpi kpis`)."""
    now = ctx.now_ms()
    scope = parse_scope(params.get("scope"))
    window, rng = resolve_range(params, now, ctx.tz)
    values = (await ctx.query.kpis([scope], rng, now))[scope]
    if ctx.extensions is not None:
        values.update(await ctx.extensions.extra_kpis(scope, rng, now))
    out = {"scope": str(scope), "window": window, "from": format_ts(rng.start),
           "to": format_ts(rng.end), "kpis": values}
    if ctx.extensions is not None:
        out["currency"] = ctx.extensions.config.costs.currency
    return out


def _enum(kind: Any, value: str | None, name: str, default: Any = None) -> Any:
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except ValueError:
        raise BadRequest(f"bad {name!r}: {value!r}; use one of "
                         f"{', '.join(v.value for v in kind)}") from None


def _history_range(ctx: ApiContext, params: dict[str, str], default_window: str) -> tuple[str | None, Range]:
    if not {"window", "from", "to"} & params.keys():
        params = {**params, "window": default_window}
    return resolve_range(params, ctx.now_ms(), ctx.tz)


async def series_payload(ctx: ApiContext, params: dict[str, str]) -> dict[str, Any]:
    """The answer of `GET /api/v1/series` (also printed by `callkpi series`)."""
    now = ctx.now_ms()
    scope = parse_scope(params.get("scope"))
    window, rng = _history_range(ctx, params, "month")
    step = _enum(history.Step, params.get("step"), "step", history.Step.DAY)
    compare = _enum(history.Compare, params.get("compare"), "compare")
    kpis = history.parse_kpis(params.get("kpis"), ("connect_rate", "conversion_rate", "aht_seconds"))
    points = await history.series(ctx.store, scope, rng, step, kpis, now, compare)
    return {"scope": str(scope), "window": window, "from": format_ts(rng.start),
            "to": format_ts(rng.end), "step": step.value,
            "compare": compare.value if compare else None, "timezone": str(ctx.tz),
            "kpis": list(kpis), "points": points}


async def breakdown_payload(ctx: ApiContext, params: dict[str, str]) -> dict[str, Any]:
    """The answer of `GET /api/v1/breakdown`."""
    now = ctx.now_ms()
    scope = parse_scope(params.get("scope"))
    by = _enum(history.BreakdownBy, params.get("by"), "by", history.BreakdownBy.AGENT)
    window, rng = _history_range(ctx, params, "30d")
    hourly = by in (history.BreakdownBy.HOUR_OF_DAY, history.BreakdownBy.WEEKDAY_HOUR)
    kpis = history.parse_kpis(params.get("kpis"), history.HOUR_KPIS if hourly else
                              ("handled", "aht_seconds", "conversion_rate"))
    try:
        limit = int(params.get("limit", "200" if hourly else "50"))
    except ValueError:
        raise BadRequest("'limit' must be an integer") from None
    if not 1 <= limit <= history.MAX_LIMIT:
        raise BadRequest(f"'limit' must be between 1 and {history.MAX_LIMIT}")
    out: dict[str, Any] = {"scope": str(scope), "by": by.value, "window": window,
                           "from": format_ts(rng.start), "to": format_ts(rng.end),
                           "timezone": str(ctx.tz), "kpis": list(kpis)}
    if hourly:
        sortable = (*history.HOUR_KPIS, *kpis)
        sort = history.parse_sort(params["sort"], sortable) if params.get("sort") else None
        cells = await history.hour_profile(ctx.store, scope, rng,
                                           by is history.BreakdownBy.WEEKDAY_HOUR, kpis, now)
        out.update(sort=f"{sort.kpi}:{'desc' if sort.descending else 'asc'}" if sort else None,
                   cells=history.rank_cells(cells, sort, limit))
        return out
    if by is history.BreakdownBy.DISPOSITION_CODE:
        codes, total = await history.disposition_codes(ctx.store, scope, rng, limit)
        out.update(sort="wrapups:desc", codes=codes, total_rows=total)
        return out
    if scope.kind != "center":
        raise BadRequest(f"a breakdown by {by.value} covers the whole center (scope=center): "
                         "counters are kept per scope, not per pair of scopes")
    sort = history.parse_sort(params.get("sort"), kpis)
    result = await history.breakdown(ctx.store, by, rng, kpis, sort, limit, now)
    out.update(sort=f"{sort.kpi}:{'desc' if sort.descending else 'asc'}", rows=result.rows,
               total_rows=result.total_rows, shown_kpis=result.shown, all_kpis=result.everyone)
    return out


def routes(ctx: ApiContext) -> web.RouteTableDef:
    r = web.RouteTableDef()

    @r.get("/api/v1/kpis")
    @_errors
    async def kpis(request: web.Request) -> web.Response:
        return _json(await kpis_payload(ctx, dict(request.query)))

    @r.get("/api/v1/series")
    @_errors
    async def series(request: web.Request) -> web.Response:
        return _json(await series_payload(ctx, dict(request.query)))

    @r.get("/api/v1/breakdown")
    @_errors
    async def breakdown(request: web.Request) -> web.Response:
        return _json(await breakdown_payload(ctx, dict(request.query)))

    @r.get("/api/v1/live")
    @_errors
    async def live(request: web.Request) -> web.Response:
        scope = parse_scope(request.query.get("scope"))
        return _json(await ctx.query.live(scope, ctx.now_ms(), ctx.call_expiry_ms))

    @r.get("/api/v1/scopes")
    async def scopes(request: web.Request) -> web.Response:
        return _json(await ctx.store.scopes())

    @r.get("/api/v1/campaigns")
    @_errors
    async def campaigns(request: web.Request) -> web.Response:
        now = ctx.now_ms()
        window, rng = resolve_range(dict(request.query), now, ctx.tz)
        ids = (await ctx.store.scopes())["campaign"]
        scopes_ = [Scope("campaign", c) for c in ids]
        values = await ctx.query.kpis(scopes_, rng, now)
        rows = []
        for s in scopes_:
            kpi = values[s]
            if ctx.extensions is not None:
                kpi.update(await ctx.extensions.extra_kpis(s, rng, now))
            rows.append({"campaign_id": s.ident, "kpis": kpi})
        return _json({"window": window, "from": format_ts(rng.start), "to": format_ts(rng.end),
                      "campaigns": rows})

    @r.get("/api/v1/agents")
    @_errors
    async def agents(request: web.Request) -> web.Response:
        now = ctx.now_ms()
        scope = parse_scope(request.query.get("scope"))
        params = dict(request.query)
        if not {"window", "from", "to"} & params.keys():
            params["window"] = "today"  # the agent grid's default; an explicit range replaces it
        window, rng = resolve_range(params, now, ctx.tz)
        live_view = await ctx.query.live(scope, now, ctx.call_expiry_ms)
        rows = live_view["agents"]["list"]
        values = await ctx.query.kpis([Scope("agent", a["agent_id"]) for a in rows], rng, now)
        out = [{**a, "kpis": values[Scope("agent", a["agent_id"])]} for a in rows]
        return _json({"scope": str(scope), "window": window, "from": format_ts(rng.start),
                      "to": format_ts(rng.end), "agents": out})

    @r.get("/api/v1/health")
    async def health(request: web.Request) -> web.Response:
        # A health check must answer when the store does not (a 503, not a 500 traceback) and
        # must not hang on an unreachable host.
        try:
            ok = await asyncio.wait_for(ctx.store.ping(), HEALTH_TIMEOUT_S)
        except (RedisError, OSError, asyncio.TimeoutError):
            ok = False
        return _json({"redis": ok}, status=200 if ok else 503)

    @r.get("/api/v1/stream")
    async def stream(request: web.Request) -> web.StreamResponse:
        return await _sse(request, ctx)

    @r.get("/openapi.json")
    async def openapi(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(OPENAPI_PATH)

    return r


async def _sse(request: web.Request, ctx: ApiContext) -> web.StreamResponse:
    """Server-sent events: `update` after store commits (at most one per SSE_MIN_INTERVAL_S), a
    ping every 15 s.

    A commit inside the interval is not dropped but sent when the interval ends: otherwise the
    last commit of a burst could go unannounced, and a page would show stale numbers until its
    next poll."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    pubsub = ctx.store.redis.pubsub()
    await pubsub.subscribe(ctx.store.layout.key("updates"))
    await resp.write(b"retry: 2000\n\n")
    last_ping = last_sent = -SSE_MIN_INTERVAL_S
    pending = False
    try:
        while True:
            wait = 0.5
            if pending:
                wait = max(0.0, last_sent + SSE_MIN_INTERVAL_S - time.monotonic())
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            pending = pending or msg is not None
            now = time.monotonic()
            if pending and now - last_sent >= SSE_MIN_INTERVAL_S:
                data = json.dumps({"at": format_ts(ctx.now_ms())})
                await resp.write(f"event: update\ndata: {data}\n\n".encode())
                last_sent, pending = now, False
            if now - last_ping >= 15:
                await resp.write(b": ping\n\n")
                last_ping = now
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        await pubsub.aclose()
    return resp


def _auth_middleware(token: str) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not token or request.path in ("/metrics",) or request.path.startswith("/static/"):
            return await handler(request)
        given = request.query.get("token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[7:]
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _json({"error": "missing or wrong access token"}, status=401)
        return await handler(request)
    return auth


def create_web_app(ctx: ApiContext, extra_routes: list[web.RouteTableDef] = ()) -> web.Application:
    app = web.Application(middlewares=[_auth_middleware(ctx.token)])
    app.add_routes(routes(ctx))
    for r in extra_routes:
        app.add_routes(r)
    return app
