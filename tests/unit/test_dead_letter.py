"""Dead-letter records always fit Kafka's default 1 MB, and a permanent refusal falls back to a
minimal record instead of raising (issue 9 item 5). The broker's refusal is the only fake here:
the errors raised are kafka-python's own."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import NamedTuple

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, TopicAuthorizationFailedError

from stream.contract import MAX_MESSAGE_BYTES, Rejection, validate
from stream.processing.dead_letter import (
    PRODUCER_MAX_BYTES,
    Delivery,
    dead_letter_record,
    minimal_record,
    send_dead_letter,
)

NOW = 1_795_166_400_000


class Msg(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes


def rejection_of(value: bytes) -> Rejection:
    r = validate(value, now_ms=NOW, max_age_ms=10**12)
    assert isinstance(r, Rejection)
    return r


@pytest.mark.parametrize("size", [150_000, 450_000, 1 << 20, 8 << 20])
def test_every_record_fits_far_below_kafkas_default(size: int) -> None:
    # the worst case for escaping: control characters and quotes, not valid UTF-8 either
    value = (b'\x00"\\\xff\x01' * (size // 5 + 1))[:size]
    msg = Msg("dialer.events", 3, 18234, value)
    record = dead_letter_record(msg, rejection_of(value), NOW)
    assert len(record) < 100_000 < PRODUCER_MAX_BYTES
    d = json.loads(record)
    assert d["reason"] == "oversize" and d["original_bytes"] == size
    assert d["original_sha256"] == hashlib.sha256(value).hexdigest()
    assert d["original_truncated"] is True
    assert base64.b64decode(d["original_b64"]) == value[:MAX_MESSAGE_BYTES]
    assert "original" not in d  # the original once, not twice


def test_a_message_within_the_contract_is_kept_whole() -> None:
    value = b'{"event_id": "e-1", "type": "call.answered", "answered_by": "robot"}'
    d = json.loads(dead_letter_record(Msg("t", 0, 5, value), rejection_of(value), NOW))
    assert base64.b64decode(d["original_b64"]) == value and d["original_truncated"] is False
    assert d["source"] == {"topic": "t", "partition": 0, "offset": 5}
    assert d["message"] and d["rejected_at"] == "2026-11-20T09:20:00.000Z"


class Broker:
    """Refuses records over `limit` bytes (as a broker's message.max.bytes), or everything."""

    def __init__(self, limit: int, refuse_all: Exception | None = None) -> None:
        self.limit, self.refuse_all = limit, refuse_all
        self.sent: list[tuple[bytes, bytes]] = []

    async def __call__(self, key: bytes, value: bytes) -> None:
        if self.refuse_all is not None:
            raise self.refuse_all
        if len(value) > self.limit:
            raise MessageSizeTooLargeError(f"the message is {len(value)} bytes")
        self.sent.append((key, value))


def test_a_permanent_refusal_falls_back_to_a_minimal_record() -> None:
    value = b"{" * 70_000
    msg = Msg("dialer.events", 1, 9, value)
    broker = Broker(limit=2_000)
    assert asyncio.run(send_dead_letter(broker, msg, rejection_of(value), NOW)) is Delivery.MINIMAL
    [(key, sent)] = broker.sent
    d = json.loads(sent)
    assert key == b"dialer.events:1" and d["minimal"] is True
    assert d == json.loads(minimal_record(msg, rejection_of(value), NOW, d["dead_letter_error"]))
    assert d["reason"] == "oversize" and d["original_bytes"] == 70_000
    assert d["original_sha256"] == hashlib.sha256(value).hexdigest()
    assert d["source"] == {"topic": "dialer.events", "partition": 1, "offset": 9}
    assert "MessageSizeTooLargeError" in d["dead_letter_error"]


def test_when_even_the_minimal_record_is_refused_nothing_raises() -> None:
    broker = Broker(0, refuse_all=TopicAuthorizationFailedError())
    value = b"[]"
    got = asyncio.run(send_dead_letter(broker, Msg("t", 0, 1, value), rejection_of(value), NOW))
    assert got is Delivery.LOST and broker.sent == []


def test_a_retriable_error_is_left_to_the_caller() -> None:
    """A broker that is away is not a reason to drop the original: the worker exits and the
    batch is redone (the offset guard makes that exact)."""
    broker = Broker(0, refuse_all=KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(send_dead_letter(broker, Msg("t", 0, 1, b"[]"), rejection_of(b"[]"), NOW))
