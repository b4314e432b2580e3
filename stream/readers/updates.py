"""The push stream's source: one Redis subscription per `serve` process, fanned out to every
`/api/v1/stream` client.

A subscription per client held one pooled connection per open wallboard: at redis-py's default
pool of 100, the 101st page made every query fail (issue 9, item 16). Here the process holds one
dedicated connection for the subscription (never taken from the query pool), counts store
commits in `generation`, and wakes each client's own event; clients beyond `max_clients` are
refused, and a client that stops reading is dropped (`send`), not buffered without bound.
Each commit's message names the scopes it wrote counters for (`stream.store.commit.
updates_message`); `on_commit` watchers (serve's `DayCache`) hear them, or None when a commit
named nothing (a team move, an older worker) or commits may have gone unseen (a resubscription).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from stream.kpi.config_file import ApiConfig

log = logging.getLogger(__name__)
RESUBSCRIBE_S = (0.5, 5.0)
REPORT_S = 30.0
"""Backoff after a lost subscription: first wait, longest wait."""

Scopes = frozenset[str] | None
"""The scopes a commit wrote counters for; None: unknown (any scope may have changed)."""


def scopes_named(message: bytes | str) -> Scopes:
    """The scopes an `updates` message names, or None: an older worker's message (the commit's
    clock alone) or a commit that cannot say (a team move), so readers assume every scope."""
    try:
        body = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        return None
    return frozenset(scopes)


class SlowClient(Exception):
    """A stream client that does not read what it is sent."""


class UpdateHub:
    def __init__(self, redis: aioredis.Redis, channel: str, limits: ApiConfig, *,
                 owns_client: bool = False) -> None:
        """`redis`: a client of its own (`owns_client`: closed with the hub) whose one
        connection holds the subscription; `limits`: the `[api]` stream settings
        (`max_stream_clients`, `stream_write_timeout_seconds`, `stream_buffer_bytes`,
        `stream_min_interval_seconds`)."""
        self._redis = redis
        self._owns_client = owns_client
        self.channel = channel
        self.max_clients = limits.max_stream_clients
        self.write_timeout_s = limits.stream_write_timeout_seconds
        self.buffer_bytes = limits.stream_buffer_bytes
        self.min_interval_s = min_interval_s = limits.stream_min_interval_seconds
        self.generation = 0
        """Bumped on every store commit seen, and after a resubscription (commits may have gone
        unseen meanwhile): cached answers of an older generation are stale. Not throttled like
        the announcements: an answer computed before a commit would otherwise be served for up
        to `min_interval_s` after it (BENCHMARKS.md, goal 6)."""
        self._last_announced = -min_interval_s
        self._scheduled: asyncio.TimerHandle | None = None
        self._delays: list[float] = []  # announcement → written to a client, since the last report
        self._reported_at = 0.0
        self.subscribed = False
        self.dropped_slow = 0
        self.refused = 0
        self._clients: set[asyncio.Event] = set()
        self.on_commit: list[Callable[[Scopes], None]] = []
        """Called with the scopes of every commit seen, and with None on (re)subscribing."""
        self._task: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- the subscription ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._scheduled is not None:
            self._scheduled.cancel()
        if self._owns_client:
            await self._redis.aclose()

    async def _run(self) -> None:
        wait = RESUBSCRIBE_S[0]
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed, wait = True, RESUBSCRIBE_S[0]
                self.generation += 1  # commits while we were not subscribed went unseen
                self._tell(None)
                self._announce()
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        self._tell(scopes_named(msg.get("data") or b""))
                        self._commit_seen()
            except (RedisError, OSError) as exc:
                log.warning("update subscription lost (%s); resubscribing in %.1f s", exc, wait)
            finally:
                self.subscribed = False
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(wait)
            wait = min(wait * 2, RESUBSCRIBE_S[1])

    def _tell(self, scopes: Scopes) -> None:
        for watcher in self.on_commit:
            watcher(scopes)

    def _commit_seen(self) -> None:
        """Announce now, or when the interval since the last announcement ends: a commit inside
        the interval is not dropped (the last commit of a burst must reach the pages too).
        Cached answers are stale at once, announced or not."""
        self.generation += 1
        if self._scheduled is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_announced + self.min_interval_s - loop.time()
        if wait <= 0:
            self._announce()
        else:
            self._scheduled = loop.call_later(wait, self._announce)

    def _announce(self) -> None:
        self._scheduled = None
        self._last_announced = asyncio.get_running_loop().time()
        for event in self._clients:
            event.set()

    # -- clients ------------------------------------------------------------------------------

    def join(self) -> asyncio.Event | None:
        """A new client's wake-up event, or None when the cap is reached."""
        if len(self._clients) >= self.max_clients:
            self.refused += 1
            return None
        event = asyncio.Event()
        self._clients.add(event)
        return event

    def bound_socket(self, request: web.Request) -> None:
        """Cap the kernel's send buffer of a stream connection too (Linux autotunes it up to
        megabytes per socket): what a stalled client can hold is then about 3 × buffer_bytes."""
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.buffer_bytes)
            except OSError:
                pass

    def delivered(self) -> None:
        """A client was sent the latest announcement: how long after it (reported in the log
        every REPORT_S, so an operator sees when the process is too busy to push in time)."""
        loop = asyncio.get_running_loop()
        if len(self._delays) < 100_000:
            self._delays.append(loop.time() - self._last_announced)
        if loop.time() - self._reported_at >= REPORT_S:
            self._reported_at = loop.time()
            d = sorted(self._delays)
            self._delays = []
            log.info("stream: %d clients, update delivered p50 %.3f s, p99 %.3f s, max %.3f s "
                     "(%d deliveries); %d slow clients dropped, %d refused over the cap",
                     len(self._clients), d[len(d) // 2], d[int(len(d) * 0.99)], d[-1], len(d),
                     self.dropped_slow, self.refused)

    def leave(self, event: asyncio.Event) -> None:
        self._clients.discard(event)

    async def send(self, request: web.Request, resp: web.StreamResponse, data: bytes) -> None:
        """Write to one client within the write timeout, and with no more than `buffer_bytes`
        left unsent: a client that does not read raises SlowClient (and is counted)."""
        transport: Any = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("stream client went away")
        try:
            await asyncio.wait_for(resp.write(data), self.write_timeout_s)
        except TimeoutError:
            self.dropped_slow += 1
            raise SlowClient("write timed out") from None
        if transport.get_write_buffer_size() > self.buffer_bytes:
            self.dropped_slow += 1
            raise SlowClient(f"{transport.get_write_buffer_size()} bytes unsent")
