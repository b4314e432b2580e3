"""A command is written whole before the store's send returns (`stream/store/sending.py`): what
asyncio buffers is written only while the event loop runs, and the pipeline process's next batch
holds the loop for hundreds of milliseconds, so a commit script left partly buffered reached
Redis only after that batch's processing (preparing and committing took turns). The pipelining
side: `test_pipelining.py::test_a_released_commit_is_in_redis_before_the_next_batch_is_processed`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from stream.store.redis_store import Store
from stream.store.sending import notify_sent

BIG = "x" * (8 << 20)  # 8 MB: far more than a socket takes at once


def test_a_big_command_is_written_whole_when_its_send_returns(redis_url: str) -> None:
    async def run() -> tuple[list[int], list[tuple[int, int]], int]:
        store = Store(redis_url)
        buffered: list[int] = []
        limits: list[tuple[int, int]] = []

        def sent() -> None:
            pool: Any = store.redis.connection_pool
            for c in pool._in_use_connections:
                buffered.append(c._writer.transport.get_write_buffer_size())
                limits.append(c._writer.transport.get_write_buffer_limits())
        with notify_sent(sent):
            task = asyncio.ensure_future(store.redis.set("ck:test:big", BIG))
            deadline = time.monotonic() + 5
            while not buffered and time.monotonic() < deadline:
                await asyncio.sleep(0)
        time.sleep(0.3)  # the loop held up, as processing holds it: Redis has it all already
        await task
        length = int(await store.redis.strlen("ck:test:big"))
        await store.close()
        return buffered, limits, length
    buffered, limits, length = asyncio.run(run())
    assert buffered == [0]  # once, and nothing of it left in asyncio's buffer
    assert limits == [(0, 0)]  # not by luck: the transport keeps nothing back (redis-py 5 to 8)
    assert length == len(BIG)
