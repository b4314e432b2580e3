"""Shared answers (`stream/readers/cache.py`): identical requests compute once per store
generation; a new generation recomputes; a 5xx is not kept; under a full compute slot a queued
request is served by an answer computed after it asked, instead of computing again."""

from __future__ import annotations

import asyncio

from aiohttp import web

from stream.readers.cache import ResponseCache


def test_identical_requests_share_one_answer_per_generation() -> None:
    async def main() -> None:
        generation = 0
        cache = ResponseCache(60, lambda: generation)
        computed = 0

        async def compute() -> web.Response:
            nonlocal computed
            computed += 1
            await asyncio.sleep(0.01)
            return web.json_response({"n": computed})

        first = await asyncio.gather(*(cache.get(("k",), compute) for _ in range(50)))
        assert computed == 1 and {r.body for r in first} == {b'{"n": 1}'}
        await cache.get(("other",), compute)
        assert computed == 2
        generation += 1  # a store commit was announced
        again = await cache.get(("k",), compute)
        assert computed == 3 and again.body == b'{"n": 3}'
    asyncio.run(main())


def test_server_errors_are_not_kept() -> None:
    async def main() -> None:
        cache = ResponseCache(60, lambda: 0)
        statuses = iter([503, 200])

        async def compute() -> web.Response:
            return web.json_response({}, status=next(statuses))
        assert (await cache.get(("k",), compute)).status == 503
        assert (await cache.get(("k",), compute)).status == 200
    asyncio.run(main())


def test_a_queued_request_is_served_by_a_later_computation() -> None:
    async def main() -> None:
        generation = 0
        cache = ResponseCache(60, lambda: generation, concurrency=1)
        release = asyncio.Event()
        computed: list[str] = []

        async def slow() -> web.Response:
            computed.append("slow")
            await release.wait()
            return web.json_response({})

        async def compute(tag: str) -> web.Response:
            computed.append(tag)
            return web.json_response({"tag": tag})

        blocker = asyncio.ensure_future(cache.get(("slow",), slow))
        await asyncio.sleep(0)
        old = asyncio.ensure_future(cache.get(("k",), lambda: compute("gen0")))  # queued
        await asyncio.sleep(0)
        generation += 1
        new = asyncio.ensure_future(cache.get(("k",), lambda: compute("gen1")))  # queued behind
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(blocker, old, new)
        # gen0's computation ran after generation 1 began: it serves the newer request too.
        assert computed == ["slow", "gen0"]
        assert new.result().body == old.result().body
    asyncio.run(main())
