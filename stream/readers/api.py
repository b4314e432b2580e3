"""The HTTP API (`/api/v1/...`), Prometheus `/metrics`, the live push stream and the wallboard."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from stream.contract import format_ts, parse_ts
from stream.kpi.catalog import PAUSED_BY_REASON, compute_all, compute_some
from stream.kpi.config_file import ApiConfig, ServiceConfig
from stream.kpi.errors import QueryError
from stream.kpi.scopes import SCOPE_KINDS, Scope, parse_scope
from stream.kpi.windows import Range, check_range, check_readable, resolve_window
from stream.readers import history
from stream.readers.auth import GRANT, OPEN, Access, Grant, grant_of, memberships
from stream.readers.business import many_counters
from stream.readers.cache import ResponseCache, SharedSnapshot
from stream.readers.query import Query, SharedOpenings, live_rows
from stream.readers.sums import ALL_COUNTERS, DayCache, OpenTime, counters_of, window_counters
from stream.readers.updates import SlowClient, UpdateHub
from stream.store.redis_store import LiveKept, Store

if TYPE_CHECKING:
    from prometheus_client.core import Metric

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPENAPI_PATH = Path(__file__).with_name("openapi.json")
HEALTH_TIMEOUT_S = 2.0
SSE_PING_S = 15.0
SSE_CHECK_S = 2.0
"""How often an idle stream handler checks whether its client went away."""
RETRY_AFTER_S = 10
LISTED_KINDS = tuple(k for k in SCOPE_KINDS if k != "center")


class Extensions(Protocol):
    """What `serve` attaches to the API (`stream.readers.business.Business`): targets,
    compliance and cost, reading the same store through the same query layer."""

    ctx: ApiContext
    config: ServiceConfig

    async def cost(self, scope: Scope, counters: dict[str, float], r: Range, now: int) -> dict[str, Any]: ...

    async def kpi_values(self, scopes: list[Scope], r: Range, now: int, *,
                         counters: dict[Scope, dict[str, float]] | None = None) -> dict[Scope, dict[str, Any]]: ...

    def routes(self) -> web.RouteTableDef: ...

    async def metric_families(self, now: int, open_time: OpenTime | None = None) -> list[Metric]: ...


@dataclass
class ApiContext:
    store: Store
    query: Query
    tz: ZoneInfo
    call_expiry_ms: int
    token: str = ""
    """CALLKPI_API_TOKEN: an unrestricted token (named tokens come from `api.tokens`)."""
    extensions: Extensions | None = None
    """Targets, compliance and cost (`service.attach_extensions`); None without them."""
    clock: Callable[[], float] = time.time
    api: ApiConfig = field(default_factory=ApiConfig)
    updates: UpdateHub | None = None
    """The shared subscription (`create_web_app` makes one when none is given)."""
    cache: ResponseCache | None = None
    """Answers shared per store generation (`create_web_app` makes it; /metrics reports it)."""
    health_redis: Any = None
    """A connection of its own for /health, so a busy query pool does not fail the check."""

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


class BadRequest(QueryError):
    """A request the API cannot read (conflicting or malformed parameters)."""


class NotFound(LookupError):
    """A named thing (e.g. an experiment) that does not exist or the token may not see."""


class Forbidden(PermissionError):
    """A scope the request's token may not read (the same answer whether it exists or not)."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers,
                             dumps=lambda d: json.dumps(d, allow_nan=False))


json_response = _json
"""JSON answers of other reader modules' routes (no NaN: it is not JSON)."""


def _per_agent_json(data: Any) -> web.Response:
    """The answers with a row per agent (the grid, the live list: ~2 KB an agent, a megabyte
    for 500): orjson writes them ~10 times faster than `json`, the same values (numbers in
    their shortest exact form; non-ASCII as UTF-8, not escaped). A KPI is never NaN or
    infinite (a zero denominator is null), so `allow_nan=False` had nothing to refuse here."""
    return web.Response(body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
                        content_type="application/json", charset="utf-8")


def resolve_range(q: dict[str, str], now_ms: int, tz: ZoneInfo) -> tuple[str | None, Range]:
    """`window=` or `from=`/`to=` (RFC 3339 or epoch ms) → the range to read."""
    window = q.get("window")
    if window == "":  # `?window=` from a form left empty: a mistake, not the 15m default
        raise BadRequest("'window' is empty: give a window (e.g. 15m, today) or leave it out")
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


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route's mistakes as documented answers: 400 bad input, 403 a scope the token may
    not read, 503 (with Retry-After) when the store does not answer or every pooled connection
    stayed busy for `api.redis_wait_seconds`; never a 500 traceback."""
    try:
        return await handler(request)
    except QueryError as exc:
        return _json({"error": str(exc)}, status=400)
    except Forbidden as exc:
        return _json({"error": str(exc)}, status=403)
    except NotFound as exc:
        return _json({"error": str(exc)}, status=404)
    except (RedisError, OSError) as exc:
        return _json({"error": f"the store did not answer: {exc}"}, status=503,
                     headers={"Retry-After": "5"})


def forbidden(scope: Scope) -> Forbidden:
    return Forbidden(f"scope {str(scope)!r} is not readable with this token")


async def require(ctx: ApiContext, grant: Grant, scope: Scope) -> None:
    """Refuse a scope the token may not read (an agent's membership: `auth.memberships`)."""
    if grant.matches(scope.kind, scope.ident):
        return
    if scope.kind == "agent" and grant.sees(scope, await memberships(ctx.store, [scope.ident])):
        return
    raise forbidden(scope)


def page_of(params: Mapping[str, str], max_size: int) -> tuple[int, int]:
    """(offset, limit) of a paged list: `limit` 1..max (default max), `offset` ≥ 0."""
    try:
        limit = int(params.get("limit", max_size))
        offset = int(params.get("offset", 0))
    except ValueError:
        raise BadRequest("'limit' and 'offset' are integers") from None
    if not 1 <= limit <= max_size:
        raise BadRequest(f"'limit' must be 1..{max_size}")
    if offset < 0:
        raise BadRequest("'offset' must be ≥ 0")
    return offset, limit


def paged(total: int, offset: int, limit: int) -> dict[str, Any]:
    nxt = offset + limit
    return {"total": total, "offset": offset, "limit": limit,
            "next_offset": nxt if nxt < total else None}


def redact_agent(grant: Grant, row: dict[str, Any]) -> dict[str, Any]:
    """An agent row names its team and campaign only when the token may see them."""
    if not grant.restricted:
        return row
    out = dict(row)
    for kind, key in (("team", "team_id"), ("campaign", "campaign_id")):
        if out.get(key) is not None and not grant.matches(kind, out[key]):
            out[key] = None
    return out


AGENTS_PER_READ = 250
"""Agent rows read per script round trip of the grid (`agent_kpis`): `today` read from day hashes
costs Redis little, so fewer, larger parts (100 before: 0.23-0.27 s of serve CPU for a 5,000-agent
refresh, 0.19-0.25 s with 250; BENCHMARKS.md) while Redis still works on one part as this process
computes the last."""


async def agent_kpis(ctx: ApiContext, scopes: list[Scope], r: Range, now: int,
                     kpis: tuple[str, ...] = ()) -> dict[Scope, dict[str, Any]]:
    """The agent grid's KPIs, summed inside Redis (`stream.readers.sums`, the exporter's path:
    the same buckets, so the same numbers) rather than every field of every agent's buckets
    parsed here: a page of 1,000 agents is a few script calls. Per-reason pause time is not in
    these rows (`/api/v1/kpis?scope=agent:<id>` has it).

    The page is read in parts of `AGENTS_PER_READ` agents, all sent at once: Redis sums the
    next part while this process computes the KPIs of the one that arrived, so the two
    processes' work overlaps instead of adding up.

    `kpis`: only these (each exactly as in the whole row), from only the counters they need (a
    wallboard shows five of the catalog's 74: at 5,000 agents the rest cost most of a refresh);
    empty: every KPI."""
    live = (await ctx.store.live()).agents
    # an agent's open time is its own live state's: the page's agents are all it needs
    open_time = OpenTime({s.ident: live[s.ident] for s in scopes if s.ident in live}, now)
    counters = counters_of(kpis) if kpis else ALL_COUNTERS
    compute = compute_some(kpis)

    async def part(chunk: list[Scope]) -> dict[Scope, dict[str, Any]]:
        sums = (await window_counters(ctx.store, chunk, {"w": r}, counters, open_time))["w"]
        if kpis:
            return {s: compute(c) for s, c in sums.items()}
        rows = {s: compute_all(c) for s, c in sums.items()}
        for values in rows.values():
            del values[PAUSED_BY_REASON]
        return rows

    parts = await asyncio.gather(*(part(scopes[i:i + AGENTS_PER_READ])
                                   for i in range(0, len(scopes), AGENTS_PER_READ)))
    return {s: v for p in parts for s, v in p.items()}


async def kpis_payload(ctx: ApiContext, params: dict[str, str],
                       grant: Grant = OPEN) -> dict[str, Any]:
    """The answer of `GET /api/v1/kpis` (also printed by `callkpi kpis`)."""
    now = ctx.now_ms()
    scope = parse_scope(params.get("scope"))
    await require(ctx, grant, scope)
    window, rng = resolve_range(params, now, ctx.tz)
    counters = (await ctx.query.counters([scope], rng, now))[scope]
    values = compute_all(counters)
    if ctx.extensions is not None:  # cost from the same sums (no second read)
        values.update(await ctx.extensions.cost(scope, counters, rng, now))
    out: dict[str, Any] = {"scope": str(scope), "window": window, "from": format_ts(rng.start),
                           "to": format_ts(rng.end), "kpis": values}
    if ctx.extensions is not None:
        out["currency"] = ctx.extensions.config.costs.currency
    notes = verdict_notes(values)
    if notes:
        out["notes"] = notes
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


async def series_payload(ctx: ApiContext, params: dict[str, str],
                         grant: Grant = OPEN) -> dict[str, Any]:
    """The answer of `GET /api/v1/series` (also printed by `callkpi series`)."""
    now = ctx.now_ms()
    scope = parse_scope(params.get("scope"))
    await require(ctx, grant, scope)
    window, rng = _history_range(ctx, params, "month")
    step = _enum(history.Step, params.get("step"), "step", history.Step.DAY)
    compare = _enum(history.Compare, params.get("compare"), "compare")
    kpis = history.parse_kpis(params.get("kpis"), ("connect_rate", "conversion_rate", "aht_seconds"))
    points = await history.series(ctx.store, scope, rng, step, kpis, now, compare)
    return {"scope": str(scope), "window": window, "from": format_ts(rng.start),
            "to": format_ts(rng.end), "step": step.value,
            "compare": compare.value if compare else None, "timezone": str(ctx.tz),
            "kpis": list(kpis), "points": points}


async def breakdown_payload(ctx: ApiContext, params: dict[str, str],
                            grant: Grant = OPEN) -> dict[str, Any]:
    """The answer of `GET /api/v1/breakdown`. A ranking of scopes covers the center; a
    scope-restricted token gets the rows of the scopes it may read (agents: those working in its
    teams or campaigns, and those of its teams who have logged off since). The heatmap and the disposition codes need the scope itself."""
    now = ctx.now_ms()
    scope = parse_scope(params.get("scope"))
    by = _enum(history.BreakdownBy, params.get("by"), "by", history.BreakdownBy.AGENT)
    if by not in history.SCOPE_BREAKDOWNS:
        await require(ctx, grant, scope)
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
    visible = None
    if grant.restricted:
        members = await memberships(ctx.store) if by is history.BreakdownBy.AGENT else None
        visible = lambda s: grant.sees(s, members)  # noqa: E731
    result = await history.breakdown(ctx.store, by, rng, kpis, sort, limit, now, visible)
    out.update(sort=f"{sort.kpi}:{'desc' if sort.descending else 'asc'}", rows=result.rows,
               total_rows=result.total_rows, shown_kpis=result.shown, all_kpis=result.everyone)
    return out

def verdict_notes(values: dict[str, Any]) -> dict[str, str]:
    """Why rates over live-person answers cannot be known for a scope: none of its answers
    carries an answering-machine verdict (queue_log and CDR sources have none, docs/adapters.md)."""
    answered = values.get("answered") or 0
    if not answered or (values.get("connected") or 0) + (values.get("machine_answered") or 0):
        return {}
    why = ("no answer in this scope has an answering-machine verdict (answered_by unknown: a "
           "source without detection, such as Asterisk queue_log or CDR)")
    return {"connect_rate": f"cannot be known: {why}; answer_rate counts every answer",
            "abandon_rate": f"cannot be known: drops are divided by live-person answers and {why}"}


def routes(ctx: ApiContext) -> web.RouteTableDef:
    r = web.RouteTableDef()
    max_page = ctx.api.max_page_size

    @r.get("/api/v1/kpis")
    async def kpis(request: web.Request) -> web.Response:
        return _json(await kpis_payload(ctx, dict(request.query), grant_of(request)))

    @r.get("/api/v1/series")
    async def series(request: web.Request) -> web.Response:
        return _json(await series_payload(ctx, dict(request.query), grant_of(request)))

    @r.get("/api/v1/breakdown")
    async def breakdown(request: web.Request) -> web.Response:
        return _json(await breakdown_payload(ctx, dict(request.query), grant_of(request)))

    @r.get("/api/v1/live")
    async def live(request: web.Request) -> web.Response:
        grant = grant_of(request)
        scope = parse_scope(request.query.get("scope"))
        await require(ctx, grant, scope)
        view = await ctx.query.live(scope, ctx.now_ms(), ctx.call_expiry_ms)
        view["agents"]["list"] = [redact_agent(grant, a) for a in view["agents"]["list"]]
        return _per_agent_json(view)

    @r.get("/api/v1/scopes")
    async def scopes(request: web.Request) -> web.Response:
        grant = grant_of(request)
        known = await ctx.store.scopes()
        members = await memberships(ctx.store) if grant.restricted else None
        out: dict[str, Any] = {
            kind: [i for i in known.get(kind, []) if grant.sees(Scope(kind, i), members)]
            for kind in LISTED_KINDS}
        out["center"] = grant.matches("center")
        return _json(out)

    @r.get("/api/v1/campaigns")
    async def campaigns(request: web.Request) -> web.Response:
        grant = grant_of(request)
        now = ctx.now_ms()
        params = dict(request.query)
        offset, limit = page_of(params, max_page)
        window, rng = resolve_range(params, now, ctx.tz)
        ids = [c for c in (await ctx.store.scopes())["campaign"] if grant.matches("campaign", c)]
        scopes_ = [Scope("campaign", c) for c in ids[offset:offset + limit]]
        counters = await many_counters(ctx.store, scopes_, rng, now)
        if ctx.extensions is not None:
            values = await ctx.extensions.kpi_values(scopes_, rng, now, counters=counters)
        else:
            values = {s: compute_all(c) for s, c in counters.items()}
        rows = [{"campaign_id": s.ident, "kpis": values[s]} for s in scopes_]
        return _json({"window": window, "from": format_ts(rng.start), "to": format_ts(rng.end),
                      "campaigns": rows, **paged(len(ids), offset, limit)})

    @r.get("/api/v1/agents")
    async def agents(request: web.Request) -> web.Response:
        grant = grant_of(request)
        now = ctx.now_ms()
        scope = parse_scope(request.query.get("scope"))
        params = dict(request.query)
        offset, limit = page_of(params, max_page)
        await require(ctx, grant, scope)
        if not {"window", "from", "to"} & params.keys():
            params["window"] = "today"  # the agent grid's default; an explicit range replaces it
        window, rng = resolve_range(params, now, ctx.tz)
        kpis = history.parse_kpis(params.get("kpis"), ())  # none named: every KPI
        everyone = await ctx.query.live_agents(scope)
        rows = live_rows(everyone[offset:offset + limit], now, ctx.query.rows_kept)  # the page's rows only
        values = await agent_kpis(ctx, [Scope("agent", a["agent_id"]) for a in rows], rng, now, kpis)
        out = [redact_agent(grant, a) for a in rows]  # rows of this answer alone: completed in place
        for row, kpi_values in zip(out, values.values(), strict=True):  # (in the rows' order)
            row["kpis"] = kpi_values
        return _per_agent_json({"scope": str(scope), "window": window, "from": format_ts(rng.start),
                                "to": format_ts(rng.end), "agents": out,
                                **paged(len(everyone), offset, limit)})

    @r.get("/api/v1/health")
    async def health(request: web.Request) -> web.Response:
        # A health check must answer when the store does not (a 503, not a 500 traceback) and
        # must not hang on an unreachable host.
        client = ctx.health_redis if ctx.health_redis is not None else ctx.store.redis
        try:
            ok = bool(await asyncio.wait_for(client.ping(), HEALTH_TIMEOUT_S))
        except (TimeoutError, RedisError, OSError):
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
    """Server-sent events: an `update` after store commits (the hub announces at most one per
    `api.stream_min_interval_seconds`, the last commit of a burst included), a ping every 15 s.
    Every client waits on the process's one subscription (`UpdateHub`)."""
    hub = ctx.updates
    assert hub is not None, "create_web_app makes the update hub"
    wake = hub.join()
    if wake is None:
        return web.json_response(
            {"error": f"too many stream clients ({hub.max_clients}, api.max_stream_clients); "
                      "try again later"}, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    try:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        hub.bound_socket(request)
        await resp.prepare(request)
        await hub.send(request, resp, b"retry: 2000\n\n")
        last_ping = time.monotonic()
        while True:
            wait = min(SSE_CHECK_S, last_ping + SSE_PING_S - time.monotonic())
            if wait > 0 and not wake.is_set():
                try:
                    await asyncio.wait_for(wake.wait(), wait)
                except TimeoutError:
                    pass
            if wake.is_set():
                wake.clear()
                data = json.dumps({"at": format_ts(ctx.now_ms())})
                await hub.send(request, resp, f"event: update\ndata: {data}\n\n".encode())
                hub.delivered()
            if time.monotonic() - last_ping >= SSE_PING_S:
                await hub.send(request, resp, b": ping\n\n")
                last_ping = time.monotonic()
            elif request.transport is None or request.transport.is_closing():
                break
    except SlowClient:
        if request.transport is not None:
            request.transport.abort()  # nothing more is written to it; free its buffers now
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.leave(wake)
    return resp


def _given_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:]
    return request.query.get("token", "")


def _auth_middleware(access: Access) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/static/") or (path == "/metrics" and access.metrics_open):
            return await handler(request)
        grant = access.identify(_given_token(request))
        if grant is None:
            return _json({"error": "missing or wrong access token"}, status=401)
        if path == "/metrics" and not grant.metrics:
            return _json({"error": "this token may not read /metrics"}, status=403)
        request[GRANT] = grant
        return await handler(request)
    return auth


CACHE = web.AppKey("cache", ResponseCache)
CACHED_PATHS = frozenset({"/api/v1/kpis", "/api/v1/live", "/api/v1/agents", "/api/v1/scopes",
                          "/api/v1/campaigns", "/api/v1/targets", "/api/v1/compliance",
                          "/api/v1/experiments", "/api/v1/retention"})


def _cache_middleware(cache: ResponseCache) -> Any:
    @web.middleware
    async def shared(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "GET" or request.path not in CACHED_PATHS:
            return await handler(request)
        query = tuple(sorted((k, v) for k, v in request.query.items() if k != "token"))
        key = (request.path, json.dumps(query), grant_of(request).cache_key())
        return await cache.get(key, lambda: handler(request))  # type: ignore[arg-type,return-value]
    return shared


def create_web_app(ctx: ApiContext, extra_routes: Sequence[web.RouteTableDef] = ()) -> web.Application:
    if ctx.updates is None:
        ctx.updates = UpdateHub(ctx.store.redis, ctx.store.layout.key("updates"), ctx.api)
    hub = ctx.updates
    cache = ctx.cache = ResponseCache(ctx.api.response_cache_seconds, lambda: hub.generation,
                                      ctx.api.query_concurrency)
    app = web.Application(middlewares=[_auth_middleware(Access(ctx.api, ctx.token)),
                                       _cache_middleware(cache), _errors_middleware])
    kept, read_live = LiveKept(), ctx.store.live
    ctx.store.live = SharedSnapshot(lambda: read_live(kept), lambda: hub.generation,  # type: ignore[method-assign,assignment]
                                    ctx.api.response_cache_seconds)
    ctx.store.openings = SharedOpenings()  # type: ignore[attr-defined]  # open time per snapshot
    if ctx.api.response_cache_seconds > 0:  # scopes' day sums until a commit heard of writes them
        day_cache = ctx.store.day_cache = DayCache(lambda: hub.subscribed)  # type: ignore[attr-defined]
        hub.on_commit.append(day_cache.commit_seen)
    app[CACHE] = cache
    app.add_routes(routes(ctx))
    for r in extra_routes:
        app.add_routes(r)

    run_with_app(app, hub.start, hub.close)
    return app


def run_with_app(app: web.Application, start: Callable[[], None],
                 close: Callable[[], Awaitable[None]]) -> None:
    """A background part of the service (the live hub, the report scheduler): started when the
    app starts, closed when it cleans up."""
    async def on_startup(_: web.Application) -> None:
        start()

    async def on_cleanup(_: web.Application) -> None:
        await close()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
