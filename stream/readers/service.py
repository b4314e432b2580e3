"""The `callkpi serve` web application: API + /metrics + wallboard + configured extensions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from stream.readers.api import ApiContext, create_web_app
from stream.readers.exporter import scrape


def attach_extensions(ctx: ApiContext, config: Any) -> ApiContext:
    """Targets, compliance and cost read the same store through the same query layer."""
    from stream.readers.business import Business
    ctx.extensions = Business(ctx, config)
    return ctx


def _metrics_routes(ctx: ApiContext) -> web.RouteTableDef:
    r = web.RouteTableDef()

    @r.get("/metrics")
    async def metrics(request: web.Request) -> web.Response:
        body = await scrape(ctx)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    return r


def _wallboard_routes() -> list[web.RouteTableDef]:
    try:
        from stream.readers.wallboard import STATIC_DIR
    except ImportError:  # pragma: no cover
        return []
    r = web.RouteTableDef()

    @r.get("/")
    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    r.static("/static", STATIC_DIR)
    return [r]


def create_service_app(ctx: ApiContext) -> web.Application:
    extra = [_metrics_routes(ctx), *_wallboard_routes()]
    if ctx.extensions is not None:
        extra.append(ctx.extensions.routes())
    app = create_web_app(ctx, extra)

    async def close_store(_: web.Application) -> None:
        await ctx.store.close()
    app.on_cleanup.append(close_store)
    return app
