"""The `callkpi serve` web application: API + /metrics + wallboard + configured extensions."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from aiohttp import web

from stream.processing import collector
from stream.readers.api import ApiContext, create_web_app
from stream.readers.exporter import scrape
from stream.readers.query import Query
from stream.readers.updates import UpdateHub
from stream.store.redis_store import Store


def build_context(settings: Any, config: Any, tz: ZoneInfo) -> ApiContext:
    """The reader's Redis connections: a bounded pool for queries (`api.redis_connections`),
    one connection for the shared update subscription, one for /health."""
    api = config.api
    store = Store(settings.redis_url, settings.key_prefix, tz, max_connections=api.redis_connections,
                  wait_seconds=api.redis_wait_seconds)
    hub = UpdateHub(aioredis.from_url(settings.redis_url, decode_responses=True),
                    store.layout.key("updates"), api, owns_client=True)
    health = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=2, timeout=1))
    return ApiContext(store=store, query=Query(store, tz), tz=tz,
                      call_expiry_ms=config.live.call_expiry_seconds * 1000,
                      token=settings.api_token, api=api, updates=hub, health_redis=health)


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
    from stream.readers.reports import routes as reports
    from stream.readers.reports.schedule import Scheduler
    config = ctx.extensions.config if ctx.extensions is not None else None
    scheduler = Scheduler(ctx, config.reports if config is not None else ())
    extra = [_metrics_routes(ctx), reports.routes(ctx, scheduler), *_wallboard_routes()]
    if ctx.extensions is not None:
        from stream.readers.experiments import routes as experiment_routes
        extra.append(ctx.extensions.routes())
        extra.append(experiment_routes(ctx, ctx.extensions.config.experiments))
    from stream.readers.retention import routes as retention_routes
    extra.append(retention_routes(ctx))
    app = create_web_app(ctx, extra)
    reports.attach(app, ctx, scheduler)

    async def close_store(_: web.Application) -> None:
        await ctx.store.close()
        if ctx.health_redis is not None:
            await ctx.health_redis.aclose()
    app.on_cleanup.append(close_store)
    return app


def run_service(ctx: ApiContext, host: str, port: int) -> None:
    """Serve the app in this process until stopped (`callkpi serve`), with serve's collector
    policy applied once it has started (`collector.serving`: process-wide, so not in
    `create_service_app`, which tests build in their own process)."""
    app = create_service_app(ctx)

    async def settle_collector(_: web.Application) -> None:
        collector.serving()
    app.on_startup.append(settle_collector)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
