"""The update hub (`stream/readers/updates.py`) against a real Redis: a store commit makes the
answers cached before it stale at once (`generation`), even while its `update` to the stream
clients waits for the end of `stream_min_interval_seconds`. Tying the two together held an
answer computed before a commit for up to that interval after it: publish → visible in the API
p50 0.8 s at 2,000 events/s, most of it here (BENCHMARKS.md, goal 6)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from stream.kpi.config_file import ApiConfig
from stream.readers.updates import UpdateHub

CHANNEL = "ck:updates"


async def _until(condition: object, what: str, timeout_s: float = 30.0) -> None:
    """Wait (generously: the machine is shared) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


def test_a_commit_makes_cached_answers_stale_before_its_update_is_announced(redis_url: str) -> None:
    async def main() -> None:
        hub = UpdateHub(aioredis.from_url(redis_url), CHANNEL,
                        ApiConfig(stream_min_interval_seconds=3600), owns_client=True)
        publisher = aioredis.from_url(redis_url)
        try:
            hub.start()
            await _until(lambda: hub.subscribed, "the hub subscribes")
            client = hub.join()
            assert client is not None
            first = hub.generation  # the subscription was announced: an interval begins
            await publisher.publish(CHANNEL, "1")  # inside the interval: its update waits
            await _until(lambda: hub.generation > first, "the commit makes older answers stale")
            assert not client.is_set()  # the stream clients still hear of it at the interval's end
        finally:
            await hub.close()
            await publisher.aclose()
    asyncio.run(main())
