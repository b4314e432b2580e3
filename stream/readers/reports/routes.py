"""The report routes of `callkpi serve`: `GET /api/v1/report` (JSON or a file), the scheduled
reports' state, and the `/reports` page (static, drawn from the API by uPlot)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from stream.kpi.scopes import parse_scope
from stream.readers.api import ApiContext, BadRequest, json_response, run_with_app
from stream.readers.auth import grant_of
from stream.readers.reports import build_report, requested_span
from stream.readers.reports.render import CONTENT_TYPES, FORMATS, STATIC, render
from stream.readers.reports.schedule import Scheduler

SCHEDULER = web.AppKey("report_scheduler", Scheduler)


async def report_payload(ctx: ApiContext, query: Any, grant: Any) -> tuple[dict[str, Any], str]:
    """The report a request asks for (`period`, `date`, `scope` repeated, `format`)."""
    fmt = query.get("format", "json")
    if fmt not in ("json", *FORMATS):
        raise BadRequest(f"bad 'format': {fmt!r}; use json, {', '.join(FORMATS)}")
    if query.get("period") in ("hour", "minute"):
        raise BadRequest("'period' is day, week or month (hour and minute are for schedules)")
    span = requested_span(query.get("period", "day"), query.get("date"), ctx.now_ms(), ctx.tz)
    scopes = query.getall("scope", []) if hasattr(query, "getall") else list(query.get("scope", []))
    report = await build_report(ctx, span, scopes or None, grant)
    return report, fmt


def routes(ctx: ApiContext, scheduler: Scheduler) -> web.RouteTableDef:
    r = web.RouteTableDef()

    @r.get("/api/v1/report")
    async def report(request: web.Request) -> web.StreamResponse:
        body, fmt = await report_payload(ctx, request.query, grant_of(request))
        if fmt == "json":
            return json_response(body)
        name = f"report-{body['period']}-{body['label']}.{fmt}"
        return web.Response(body=render(body, fmt), headers={
            "Content-Type": CONTENT_TYPES[fmt],
            "Content-Disposition": f"{'inline' if fmt == 'html' else 'attachment'}; filename=\"{name}\""})

    def _visible(request: web.Request, scopes: tuple[str, ...]) -> bool:
        grant = grant_of(request)
        return all(grant.matches(s.kind, s.ident) for s in map(parse_scope, scopes))

    @r.get("/api/v1/reports/scheduled")
    async def scheduled(request: web.Request) -> web.Response:
        rows = [{"name": s.name, "period": s.period, "scopes": list(s.scopes), "format": s.format,
                 "webhook": bool(s.webhook), "last": scheduler.last.get(s.name)}
                for s in scheduler.schedules if _visible(request, s.scopes)]
        return json_response({"reports": rows, "counts": dict(scheduler.counts)})

    @r.get("/reports")
    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "reports" / "index.html")

    # before the wallboard's /static: the more specific prefix (uPlot, the chart and page code)
    r.static("/static/shared", STATIC)
    return r


def attach(app: web.Application, ctx: ApiContext, scheduler: Scheduler) -> None:
    """Start the schedules with the app, stop them with it."""
    app[SCHEDULER] = scheduler
    run_with_app(app, scheduler.start, scheduler.close)
