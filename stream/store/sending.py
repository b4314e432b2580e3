"""A command is in Redis's hands only once all of it is written to the socket.

asyncio keeps what the kernel does not take at once in the transport's own buffer, and writes it
out only while the event loop runs. A batch's commit is a script with megabytes of arguments
(~740 bytes an event, 5,000 events); the pipeline process sends it, then processes the next
batch, which holds the event loop for a few hundred milliseconds. Redis then had only the
first part of the script, could not run it, and got the rest once that processing was over:
preparing and committing ran in turn, not side by side (`bench/overlap.py`: the pipeline process
idle for as long as Redis's whole CPU time, wall time the sum of the two processes' CPU).

So the store's connections keep no buffer of their own (`flushing`: a write buffer limit of 0,
so redis-py's `drain()` returns only once the transport has written everything), and a caller
can learn when a command of its own task has been written whole (`notify_sent`): the commit
is released, the script written out, and only then does the next batch's processing begin.
(A script Redis does not hold yet, after a restart, is refused first and sent again once that
reply is read: that one commit still waits for the loop.)
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio.connection import AbstractConnection

_ON_SENT: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "callkpi_on_sent", default=None)


class _Flushing:
    """Mixed in before a redis-py connection class (plain, TLS or Unix socket alike)."""

    # redis-py 8 connects through `connect_check_health` (`send_packed_command` calls it
    # directly); earlier versions through `connect`: both are covered, and on 8 the limit is
    # simply set twice
    async def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        await self._handshake(super().connect_check_health(*args, **kwargs))  # type: ignore[misc]

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        await self._handshake(super().connect(*args, **kwargs))  # type: ignore[misc]

    async def _handshake(self, connecting: Awaitable[None]) -> None:
        token = _ON_SENT.set(None)  # the handshake's commands are not the caller's
        try:
            await connecting
        finally:
            _ON_SENT.reset(token)
        # redis-py keeps its StreamWriter private; the transport is asyncio's public API
        writer: Any = getattr(self, "_writer", None)
        if writer is not None:
            writer.transport.set_write_buffer_limits(high=0)  # drain() waits until all is written

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        await super().send_packed_command(command, check_health)  # type: ignore[misc]
        on_sent = _ON_SENT.get()
        if on_sent is not None:
            on_sent()


def flushing(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """`cls`, with commands written whole before `send_packed_command` returns."""
    if issubclass(cls, _Flushing):
        return cls
    return type(f"Flushing{cls.__name__}", (_Flushing, cls), {})


@contextmanager
def notify_sent(callback: Callable[[], None]) -> Iterator[None]:
    """Within this block, every command this task sends calls `callback` once written whole."""
    token = _ON_SENT.set(callback)
    try:
        yield
    finally:
        _ON_SENT.reset(token)
