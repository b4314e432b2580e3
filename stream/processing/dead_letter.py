"""Dead-letter records: what a rejected message becomes on the DLQ topic, always small enough.

A record used to carry the original twice (escaped text and base64), so a 150-450 KB input made
a record over Kafka's default 1 MB limit, the send failed, the worker died, and so did every
worker that took the partition over. Now the original is kept once, as base64 of at most its
first 64 KiB (the contract's largest valid message), with its full length and sha256, so every
record fits far below 1 MB. Should a send still fail for good (a broker with a smaller limit, a
topic that refuses writes), a minimal record without the original is sent instead, and if even
that fails the rejection stays counted (the counter is in the commit) and the worker goes on.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from stream.contract import MAX_MESSAGE_BYTES, Rejection, format_ts

log = logging.getLogger(__name__)

ORIGINAL_MAX_BYTES = MAX_MESSAGE_BYTES
"""How much of the original a record keeps: all of any message that is not `oversize`."""
PRODUCER_MAX_BYTES = 1 << 20
"""Kafka's default `max.request.size`; a default broker's `message.max.bytes` is 1,048,588."""

DeadLetter = Callable[[bytes, bytes], Awaitable[None]]
"""Sends (key, value) to the dead-letter topic and waits for the broker's ack."""


class Rejected(Protocol):
    """Where a rejected message came from (the pipeline's RawMessage)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def value(self) -> bytes: ...


class Delivery(enum.Enum):
    """How a rejected message reached the dead-letter topic."""

    FULL = "full"
    MINIMAL = "minimal"  # the full record was refused for good; counted as dead_letter_minimal
    LOST = "lost"  # even the minimal one was refused; counted as dead_letter_lost


def _identity(msg: Rejected, rejection: Rejection, now_ms: int) -> dict[str, object]:
    return {
        "reason": rejection.reason,
        "event_id": rejection.event_id,
        "rejected_at": format_ts(now_ms),
        "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
        "original_bytes": len(msg.value),
        "original_sha256": hashlib.sha256(msg.value).hexdigest(),
    }


def dead_letter_record(msg: Rejected, rejection: Rejection, now_ms: int) -> bytes:
    """The DLQ value: why and where, and the original (base64, at most 64 KiB of it)."""
    kept = msg.value[:ORIGINAL_MAX_BYTES]
    record = _identity(msg, rejection, now_ms)
    record["message"] = rejection.message
    record["original_truncated"] = len(kept) < len(msg.value)
    record["original_b64"] = base64.b64encode(kept).decode("ascii")
    return json.dumps(record).encode()


def minimal_record(msg: Rejected, rejection: Rejection, now_ms: int, error: str) -> bytes:
    """The fallback when the full record cannot be written: no original, no message text."""
    record = _identity(msg, rejection, now_ms)
    record["minimal"] = True
    record["dead_letter_error"] = error[:200]
    return json.dumps(record).encode()


def is_permanent(exc: BaseException) -> bool:
    """A Kafka error that retrying cannot fix (MessageSizeTooLarge, authorization, invalid
    topic...). Retriable ones (broker away, timeouts) are left to the caller: the worker exits
    and the batch is redone, which loses nothing."""
    return getattr(exc, "retriable", None) is False


async def send_dead_letter(send: DeadLetter, msg: Rejected, rejection: Rejection,
                           now_ms: int) -> Delivery:
    """Dead-letter one rejected message; never raises for a permanent refusal."""
    key = f"{msg.topic}:{msg.partition}".encode()
    try:
        await send(key, dead_letter_record(msg, rejection, now_ms))
        return Delivery.FULL
    except Exception as exc:
        if not is_permanent(exc):
            raise
        error = f"{type(exc).__name__}: {exc}"
    log.error("dead-letter record of %s:%d@%d refused (%s); sending a minimal record",
              msg.topic, msg.partition, msg.offset, error)
    try:
        await send(key, minimal_record(msg, rejection, now_ms, error))
        return Delivery.MINIMAL
    except Exception as exc:
        if not is_permanent(exc):
            raise
        log.error("minimal dead-letter record of %s:%d@%d refused too (%s: %s); the rejection "
                  "is counted, its record is lost", msg.topic, msg.partition, msg.offset,
                  type(exc).__name__, exc)
        return Delivery.LOST
