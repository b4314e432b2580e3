"""Shared answers for identical requests: hundreds of wallboards ask the same few questions
after every store commit.

A request's answer is computed once per (route, query, token rights) and store generation
(`UpdateHub.generation`, bumped on every commit), and served to every identical request that
arrives while it is being computed or within `ttl_s` after (answers move with the clock too:
open agent time, time in state). 500 wallboards then cost a few computations per commit instead
of 500 × 7.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import web

MAX_ENTRIES = 4096


class Answer(NamedTuple):
    status: int
    body: bytes
    content_type: str
    retry_after: str | None = None
    """A 503's Retry-After (the only header a route sets on these answers)."""


class _Entry(NamedTuple):
    generation: int
    at: float
    answer: asyncio.Future[Answer]


class ResponseCache:
    def __init__(self, ttl_s: float, generation: Callable[[], int], concurrency: int = 4) -> None:
        """`concurrency`: answers computed at once; more wait their turn. Computing steps share
        the event loop with every stream client: bounding them keeps the loop responsive (an
        `update` reaches the pages in time) when more is asked than one core can compute."""
        self.ttl_s = ttl_s
        self._generation = generation
        self._computing = asyncio.Semaphore(concurrency)
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self.hits = self.misses = 0

    async def get(self, key: tuple[str, ...], compute: Callable[[], Awaitable[web.Response]]) -> web.Response:
        if self.ttl_s <= 0:
            async with self._computing:
                return await compute()
        now, generation = time.monotonic(), self._generation()
        entry = self._entries.get(key)
        if entry is not None and entry.generation == generation and now - entry.at < self.ttl_s:
            self.hits += 1
            answer = await asyncio.shield(entry.answer)
        else:
            self.misses += 1
            future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            self._prune(now)
            self._entries[key] = _Entry(generation, now, future)
            answer = await self._compute(key, future, compute)
        return web.Response(status=answer.status, body=answer.body,
                            content_type=answer.content_type,
                            headers=None if answer.retry_after is None else {"Retry-After": answer.retry_after})

    async def _compute(self, key: tuple[str, ...], future: asyncio.Future[Answer],
                       compute: Callable[[], Awaitable[web.Response]]) -> Answer:
        """Compute when a slot is free, unless an answer computed meanwhile (by a request
        queued earlier) already covers this one; share the result with the newer entry of the
        same key as well when it was asked for before this computation started. Under overload
        each question is then computed about once per free slot, not once per store
        generation queued up."""
        try:
            async with self._computing:
                if future.done():
                    return future.result()
                started = self._generation()
                resp = await compute()
        except BaseException as exc:
            if self._entries.get(key, None) is not None and self._entries[key].answer is future:
                del self._entries[key]
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it, nobody else must log it
            raise
        answer = Answer(resp.status, resp.body, resp.content_type,  # type: ignore[arg-type]
                        resp.headers.get("Retry-After"))
        if not future.done():
            future.set_result(answer)
        newest = self._entries.get(key)
        if resp.status >= 500:  # shared with who waited for it, but the next one retries
            if newest is not None and newest.answer is future:
                del self._entries[key]
        elif (newest is not None and newest.answer is not future and not newest.answer.done()
              and newest.generation <= started):
            newest.answer.set_result(answer)  # as fresh as the one it waits to compute
        return answer

    def _prune(self, now: float) -> None:
        if len(self._entries) < MAX_ENTRIES:
            return
        for k in [k for k, e in self._entries.items() if now - e.at >= self.ttl_s]:
            del self._entries[k]
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()


class SharedSnapshot:
    """`Store.live()` (every live agent and call, parsed from JSON) read once per store
    generation and shared by every request of that generation (single flight), instead of once
    per request and per KPI read. Callers only read the snapshot."""

    def __init__(self, read: Callable[[], Awaitable[Any]], generation: Callable[[], int],
                 ttl_s: float) -> None:
        self._read, self._generation, self.ttl_s = read, generation, ttl_s
        self._entry: tuple[int, float, asyncio.Future[Any]] | None = None

    async def __call__(self) -> Any:
        if self.ttl_s <= 0:
            return await self._read()
        now, generation = time.monotonic(), self._generation()
        e = self._entry
        if e is not None and e[0] == generation and now - e[1] < self.ttl_s:
            return await asyncio.shield(e[2])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._entry = (generation, now, future)
        try:
            value = await self._read()
        except BaseException as exc:
            self._entry = None
            future.set_exception(exc)
            future.exception()
            raise
        future.set_result(value)
        return value
