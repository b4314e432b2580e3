"""Bounded work per request (issue 9, item 17), in process over a real redis-server filled by
the worker's batch step: the agent list and the campaign list are paged with a maximum page
size, and the campaign list reads the live agents once, not once per campaign."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stream.cli.commands import build_api
from stream.cli.embedded import free_port, start_redis
from stream.readers.service import create_service_app
from stream.settings import Settings
from tests.harness import bench_module

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_redis(free_port(), tmp_path_factory.mktemp("bounds"))
    url = f"redis://127.0.0.1:{server.port}/0"
    module = bench_module("scrape")
    try:
        asyncio.run(module.fill(url, agents=30, hours=1.0, copies=0, seed=3))
        yield url
    finally:
        server.stop()


def run(redis_url: str, tmp: Path, config: str, check: Any) -> Any:
    path = tmp / "callkpi.toml"
    path.write_text(config)

    async def main() -> Any:
        from aiohttp.test_utils import TestServer
        ctx = build_api(Settings(redis_url=redis_url, config=str(path)))
        server = TestServer(create_service_app(ctx), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                async def get(p: str) -> tuple[int, Any]:
                    async with session.get(str(server.make_url(p))) as r:
                        return r.status, await r.json()
                return await check(ctx, get)
        finally:
            await server.close()
    return asyncio.run(main())


def test_agents_are_paged_with_a_maximum_page_size(redis_url: str, tmp_path: Path) -> None:
    async def check(ctx: Any, get: Any) -> None:
        status, whole = await get("/api/v1/agents")
        assert status == 200 and whole["total"] > len(whole["agents"]) == 25
        assert whole["limit"] == 25 and whole["next_offset"] == 25  # the default page is the max
        seen, offset = [], 0
        while offset is not None:
            status, page = await get(f"/api/v1/agents?limit=7&offset={offset}")
            assert status == 200 and len(page["agents"]) <= 7
            seen += [a["agent_id"] for a in page["agents"]]
            offset = page["next_offset"]
        assert len(seen) == len(set(seen)) == whole["total"]
        for bad in ("limit=26", "limit=0", "offset=-1", "limit=x"):
            status, body = await get(f"/api/v1/agents?{bad}")
            assert status == 400 and ("limit" in body["error"] or "offset" in body["error"]), bad
        status, camps = await get("/api/v1/campaigns?limit=2&offset=1")
        assert status == 200 and len(camps["campaigns"]) == 2 and camps["offset"] == 1
        assert (await get("/api/v1/campaigns?limit=26"))[0] == 400
    run(redis_url, tmp_path, "[api]\nmax_page_size = 25\n", check)


def test_the_campaign_list_reads_the_live_agents_once(redis_url: str, tmp_path: Path) -> None:
    """Each campaign's cost read every live agent again: campaigns × agents per refresh."""
    async def check(ctx: Any, get: Any) -> None:
        reads = 0
        live = ctx.store.live

        async def counted() -> Any:
            nonlocal reads
            reads += 1
            return await live()
        ctx.store.live = counted
        status, body = await get("/api/v1/campaigns?window=today")
        assert status == 200 and len(body["campaigns"]) >= 4
        assert reads == 1, reads
        # The same numbers as one campaign's own /kpis.
        first = body["campaigns"][0]
        status, one = await get(f"/api/v1/kpis?scope=campaign:{first['campaign_id']}&window=today")
        for name in ("dialed", "connect_rate", "cost", "staffed_hours", "occupancy"):
            if name in one["kpis"]:
                a, b = first["kpis"][name], one["kpis"][name]
                assert (a is None and b is None) or abs(a - b) <= 1e-6 * max(1, abs(b)) + 1e-3, name
    run(redis_url, tmp_path, "[api]\nresponse_cache_seconds = 0\n", check)
