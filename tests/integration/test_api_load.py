"""`callkpi serve` under many wallboards (issue 9, item 16), in process (aiohttp's test server over
a real redis-server): more open event streams than redis-py's default pool of 100 connections
must not take /kpis or /health down; the number of stream clients is capped with a clear 503; a
client that stops reading is dropped instead of being buffered forever; queries share a bounded
pool of Redis connections."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis

from stream.cli.commands import build_api
from stream.readers.service import create_service_app
from stream.settings import Settings

pytestmark = pytest.mark.integration
CHANNEL = "ck:updates"


def settings_for(url: str, tmp: Path, config: str = "") -> Settings:
    path = tmp / "callkpi.toml"
    path.write_text(config)
    return Settings(redis_url=url, config=str(path))


class Running:
    def __init__(self, base: str, ctx: object) -> None:
        self.base, self.ctx = base, ctx


@contextlib.asynccontextmanager
async def _serve(settings: Settings) -> AsyncIterator[Running]:
    from aiohttp.test_utils import TestServer
    ctx = build_api(settings)
    server = TestServer(create_service_app(ctx), host="127.0.0.1")
    await server.start_server()
    try:
        yield Running(str(server.make_url("")).rstrip("/"), ctx)
    finally:
        await server.close()


async def open_stream(session: aiohttp.ClientSession, base: str) -> aiohttp.ClientResponse:
    """An event stream that has been subscribed (its first line, `retry:`, has arrived)."""
    resp = await session.get(f"{base}/api/v1/stream", timeout=aiohttp.ClientTimeout(total=None))
    assert resp.status == 200, await resp.text()
    line = await asyncio.wait_for(resp.content.readline(), 30)
    assert line.startswith(b"retry:"), line
    return resp


async def next_update(resp: aiohttp.ClientResponse, within: float = 20.0) -> None:
    async def read() -> None:
        while True:
            line = await resp.content.readline()
            if not line:
                raise AssertionError("the stream ended")
            if line.startswith(b"event: update"):
                return
    await asyncio.wait_for(read(), within)


def test_150_wallboards_leave_kpis_and_health_up(redis_url: str, tmp_path: Path) -> None:
    """150 > the old pool of 100: each stream held a pub/sub connection, /kpis answered 500."""
    async def main() -> None:
        async with _serve(settings_for(redis_url, tmp_path)) as svc:
            conn = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=conn) as session:
                streams = await asyncio.gather(*(open_stream(session, svc.base) for _ in range(150)))
                for path in ("/api/v1/kpis?window=today", "/api/v1/health", "/api/v1/live",
                             "/api/v1/campaigns", "/api/v1/agents"):
                    async with session.get(svc.base + path) as r:
                        assert r.status == 200, (path, r.status, await r.text())
                # One shared subscription reaches every client.
                publisher = redis.Redis.from_url(redis_url)
                publisher.publish(CHANNEL, "commit")
                publisher.close()
                await asyncio.gather(*(next_update(s) for s in streams))
                for s in streams:
                    s.close()
    asyncio.run(main())


def test_stream_clients_over_the_cap_get_503_with_retry_after(redis_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        config = "[api]\nmax_stream_clients = 3\n"
        async with _serve(settings_for(redis_url, tmp_path, config)) as svc:
            async with aiohttp.ClientSession() as session:
                streams = [await open_stream(session, svc.base) for _ in range(3)]
                async with session.get(f"{svc.base}/api/v1/stream") as r:
                    assert r.status == 503
                    assert int(r.headers["Retry-After"]) > 0
                    assert "stream clients" in (await r.json())["error"]
                streams.pop().close()
                async def reopened() -> aiohttp.ClientResponse:
                    while True:  # the server notices the closed client on its next write
                        resp = await session.get(f"{svc.base}/api/v1/stream")
                        if resp.status == 200:
                            return resp
                        resp.close()
                        await asyncio.sleep(0.2)
                streams.append(await asyncio.wait_for(reopened(), 30))
                for s in streams:
                    s.close()
    asyncio.run(main())


def test_a_client_that_does_not_read_is_dropped(redis_url: str, tmp_path: Path) -> None:
    """A client that stops reading must not make the server buffer its updates without bound."""
    async def main() -> None:
        config = ("[api]\nstream_write_timeout_seconds = 1\nstream_min_interval_seconds = 0\n"
                  "stream_buffer_bytes = 4096\n")
        async with _serve(settings_for(redis_url, tmp_path, config)) as svc:
            hub = svc.ctx.updates  # type: ignore[attr-defined]
            host, port = svc.base.removeprefix("http://").split(":")
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect((host, int(port)))
            stalled.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            async with aiohttp.ClientSession() as session:
                reader = await open_stream(session, svc.base)
                for _ in range(100):
                    if hub.clients == 2:
                        break
                    await asyncio.sleep(0.1)
                assert hub.clients == 2
                r = redis.Redis.from_url(redis_url)
                try:
                    for _ in range(3000):  # never read by `stalled`: its buffers fill up
                        for _ in range(20):
                            r.publish(CHANNEL, "x" * 10)
                        await asyncio.sleep(0.01)
                        if hub.dropped_slow:
                            break
                        while True:  # keep the reading client's socket drained
                            try:
                                await asyncio.wait_for(reader.content.readany(), 0.001)
                            except TimeoutError:
                                break
                    for _ in range(100):
                        if hub.clients == 1:
                            break
                        await asyncio.sleep(0.1)
                    assert hub.dropped_slow == 1 and hub.clients == 1, (hub.dropped_slow, hub.clients)
                    r.publish(CHANNEL, "after")
                    await next_update(reader)  # the reading client is still served
                finally:
                    r.close()
                    stalled.close()
                reader.close()
    asyncio.run(main())


def test_queries_share_a_bounded_pool(redis_url: str, tmp_path: Path) -> None:
    """More concurrent requests than connections wait for one instead of failing."""
    c = redis.Redis.from_url(redis_url)
    before = {x["id"] for x in c.client_list()}

    async def main() -> None:
        async with _serve(settings_for(redis_url, tmp_path, "[api]\nredis_connections = 4\n")) as svc:
            pool = svc.ctx.store.redis.connection_pool  # type: ignore[attr-defined]
            assert pool.max_connections == 4
            conn = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=conn) as session:
                async def get(path: str) -> int:
                    async with session.get(svc.base + path) as r:
                        await r.read()
                        return r.status
                statuses = await asyncio.gather(*(get("/api/v1/kpis") for _ in range(100)),
                                                *(get("/api/v1/health") for _ in range(20)))
                assert set(statuses) == {200}
            clients = [x for x in c.client_list() if x["id"] not in before]
            # the pool, the one shared subscription, /health's own connection
            assert len(clients) <= 4 + 1 + 1, clients
    asyncio.run(main())
    c.close()
