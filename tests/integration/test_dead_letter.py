"""An oversize input must not crash-loop the worker (issue 9 item 5).

The dead-letter record used to carry the original twice (escaped text and base64), so a message
of 150-450 KB made a record over Kafka's default 1 MB limit: the send failed, the worker died, and
so did every worker that took the partition over. Real broker, real worker, real Redis; the DLQ
producer refuses records over Kafka's default `max.request.size` as a default broker refuses them
(`message.max.bytes`), so the same failure shows here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest

from stream.cli.embedded import Managed
from tests.harness import Service, make_service, wait_until

pytestmark = pytest.mark.integration
NOW = int(time.time() * 1000)
KAFKA_DEFAULT_MAX_BYTES = 1_000_000


def _dial(eid: str) -> bytes:
    return json.dumps({"event_id": eid, "type": "call.dialed", "ts": NOW - 60_000,
                       "call_id": eid, "campaign_id": "c1"}).encode()


def _read_dlq(svc: Service, expect: int, timeout: float = 60) -> list[bytes]:
    from kafka import KafkaConsumer
    consumer = KafkaConsumer("dialer.events.dlq", bootstrap_servers=svc.infra.bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=2000, fetch_max_bytes=8 << 20,
                             max_partition_fetch_bytes=8 << 20)
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expect and time.monotonic() < deadline:
            values += [m.value for m in consumer]
    finally:
        consumer.close()
    return values


def consumed_alive(svc: Service, worker: Managed, n: int, timeout: float = 300) -> None:
    """Wait until `n` messages are committed; fail at once if the worker dies meanwhile."""
    wait_until(lambda: worker.proc.poll() is not None or svc.pipeline_counter("consumed") >= n,
               timeout, lambda: f"consumed {svc.pipeline_counter('consumed')} of {n}")
    assert worker.proc.poll() is None, f"the worker died:\n{svc.logs()}"


@pytest.mark.timeout(600)
def test_a_450_kb_message_is_dead_lettered_and_the_worker_lives(tmp_path: Path) -> None:
    svc = make_service(tmp_path)
    try:
        worker = svc.start_worker()
        huge = json.dumps({"event_id": "big-1", "type": "call.dialed", "ts": NOW - 60_000,
                           "call_id": "big", "campaign_id": "c1",
                           "notes": "\\u00e9\"<x>\n" * 32_000}).encode()
        assert 400_000 < len(huge) < 1 << 20  # the harness's producer (and the broker) take it
        svc.publish([_dial("ok-1"), huge, _dial("ok-2")])
        consumed_alive(svc, worker, 3)
        svc.publish([_dial("ok-3")])  # the worker goes on consuming after it
        consumed_alive(svc, worker, 4)
        assert svc.pipeline_counter("rejected:oversize") == 1
        assert svc.pipeline_counter("accepted") == 3

        [value] = _read_dlq(svc, 1)
        assert len(value) < KAFKA_DEFAULT_MAX_BYTES
        record = json.loads(value)
        assert record["reason"] == "oversize" and record["event_id"] is None
        assert record["source"]["topic"] == "dialer.events"
        assert record["original_bytes"] == len(huge)
        assert record["original_sha256"] == hashlib.sha256(huge).hexdigest()
        assert record["original_truncated"] is True
        kept = base64.b64decode(record["original_b64"])
        assert kept == huge[:len(kept)] and len(kept) == 64 * 1024
        wait_until(lambda: worker.proc.poll() is None, 1)
    finally:
        svc.stop()


def test_a_refused_dead_letter_never_stops_the_batch(tmp_path: Path) -> None:
    """A DLQ that refuses records for good (here: a 2 KB limit, as a broker configured small):
    the batch still commits, its rejection is counted, the fallback too."""
    import asyncio

    import redis
    from kafka.errors import MessageSizeTooLargeError

    from stream.cli.embedded import free_port, start_redis
    from stream.kpi.contributions import Thresholds
    from stream.processing.pipeline import Pipeline, RawMessage
    from stream.store.redis_store import Store

    server = start_redis(free_port(), tmp_path)
    url = f"redis://127.0.0.1:{server.port}/0"
    sent: list[bytes] = []

    async def small_dlq(key: bytes, value: bytes) -> None:
        if len(value) > 2_000:
            raise MessageSizeTooLargeError(f"the message is {len(value)} bytes")
        sent.append(value)

    try:
        p = Pipeline(Store(url, "dl:"), small_dlq, Thresholds(), state_horizon_ms=3_600_000,
                     clock=lambda: NOW / 1000)
        values = [_dial("ok-1"), b"{" * 70_000, _dial("ok-2")]
        asyncio.run(p.handle([RawMessage("dialer.events", 0, i, v, NOW) for i, v in enumerate(values)]))
        r = redis.Redis.from_url(url, decode_responses=True)
        counters = r.hgetall("dl:pipeline")
        assert counters["rejected:oversize"] == "1" and counters["accepted"] == "2"
        assert counters["dead_letter_minimal"] == "1"
        [record] = [json.loads(v) for v in sent]
        assert record["minimal"] is True and record["original_bytes"] == 70_000
    finally:
        server.stop()
