"""The Faust application: the consumer of `dialer.events` feeds raw batches to the pipeline.

Faust does what it is good at here (consumer groups, partition assignment, rebalancing, offset
commits); the state lives in the store so that a batch and its effects commit atomically. Each
fetch of the input topic goes to the pipeline in one hand-off (`fetch.py`) instead of through a
per-message agent stream, whose dispatch cost as much CPU as all the KPI work.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.types import Message
from redis.exceptions import RedisError

from stream.kpi.contributions import Thresholds
from stream.processing.fetch import BatchSink, BatchTransport
from stream.processing.offload import PipelineProcess
from stream.processing.pipelining import run_until_committed
from stream.processing.horizon import topic_partitions
from stream.processing.pipeline import Pipeline, RawMessage
from stream.settings import Settings
from stream.store.redis_store import Store

log = logging.getLogger(__name__)


class LeanApp(faust.App):
    """A Faust app that hands whole fetches to `batch_sinks` (see `fetch.py`), without its
    built-in Monitor sensor: it records per-event statistics that nothing here reads (the
    pipeline keeps its own counters in Redis), on every message."""

    batch_sinks: dict[str, BatchSink]

    def on_init_dependencies(self) -> Any:
        deps = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        return deps

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)


def create_app(settings: Settings, thresholds: Thresholds) -> faust.App:
    worker_id = settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"
    data_dir = settings.data_dir or f"/tmp/callkpi-faust-{os.getpid()}"
    app = LeanApp(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=data_dir,
        topic_partitions=settings.partitions,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        broker_commit_every=100_000,  # commits are driven by the interval
        broker_commit_interval=settings.commit_interval_s,
        broker_max_poll_records=settings.batch_max,  # a fetch is a batch (fetch.py)
        producer_linger_ms=5,
        table_cleanup_interval=3600.0,
    )
    source = app.topic(settings.input_topic, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw",
                       partitions=settings.partitions)
    dlq = app.topic(settings.dlq_topic, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw", partitions=1)
    store = Store(settings.redis_url, settings.key_prefix, settings.zone)

    async def dead_letter(key: bytes, value: bytes) -> None:
        fut = await dlq.send(key=key, value=value)
        await fut

    if settings.pipeline_process:
        ingest_batch = _offloaded(app, settings, thresholds, worker_id)
    else:
        pipeline = Pipeline(store, dead_letter, thresholds,
                            state_horizon_ms=int(settings.state_horizon_hours * 3_600_000),
                            agent_state_ms=int(settings.agent_state_hours * 3_600_000),
                            worker_id=worker_id,
                            cache_bytes=int(settings.state_cache_mb * 2**20),
                            source_partitions=topic_partitions(settings.input_topic, settings.partitions))

        async def ingest_batch(messages: list[Message], batch: list[RawMessage]) -> None:
            await run_until_committed(pipeline, pipeline.check(batch, _lag_gauges(app, batch)))
            for m in messages:
                m.ack(app.consumer)

    async def ingest(messages: list[Message]) -> None:
        """One fetch of the input topic: processed (or queued to the pipeline process) in
        order; each message is acked once its batch is committed to Redis."""
        batch = [RawMessage(m.topic, m.partition, m.offset, m.value or b"",
                            int((m.timestamp or 0) * 1000)) for m in messages]
        await ingest_batch(messages, batch)

    app.topics.add(source)
    app.batch_sinks = {settings.input_topic: ingest}

    @app.task
    async def declare_dlq() -> None:
        await dlq.maybe_declare()

    @app.timer(interval=5.0)
    async def heartbeat() -> None:
        now = int(time.time() * 1000)
        try:
            await store.heartbeat(worker_id, now, _assigned_lag(app))
            await store.prune_live_calls(now - settings_call_expiry_ms(app))
            await store.retire_idle_watermarks(now)
        except (RedisError, OSError) as exc:  # a Redis outage must not crash the worker
            log.warning("heartbeat skipped, Redis unavailable: %s", exc)

    app.conf.callkpi_call_expiry_ms = 1800 * 1000  # replaced by the CLI from the config file
    return app


def _offloaded(app: faust.App, settings: Settings, thresholds: Thresholds,
               worker_id: str) -> Callable[[list[Message], list[RawMessage]], Awaitable[None]]:
    """Hand batches to the pipeline process; ack each batch's messages once it is committed.
    Faust commits a partition's offset only up to its lowest unacked message."""
    def stop(why: str) -> None:
        # Exit as a crash would: a graceful Faust shutdown would wait forever for the acks of
        # batches the child never committed. Nothing uncommitted was acked, so the next
        # consumer of these partitions redoes them exactly (tests/integration/test_crash.py).
        logging.shutdown()
        os._exit(70)

    child = PipelineProcess(settings, thresholds, worker_id, on_failure=stop)

    async def ingest_batch(messages: list[Message], batch: list[RawMessage]) -> None:
        done = await child.submit(batch, _lag_gauges(app, batch))

        def ack(fut: Any) -> None:
            if not fut.cancelled() and fut.exception() is None:
                for m in messages:
                    m.ack(app.consumer)
        done.add_done_callback(ack)

    return ingest_batch


def settings_call_expiry_ms(app: faust.App) -> int:
    return int(getattr(app.conf, "callkpi_call_expiry_ms", 1_800_000))


def _lag_gauges(app: faust.App, batch: list[RawMessage]) -> dict[str, float]:
    """Consumer lag of the partitions in this batch: highwater − next offset to read."""
    last: dict[tuple[str, int], int] = {}
    for m in batch:
        last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)
    out: dict[str, float] = {}
    for (topic, partition), offset in last.items():
        try:
            hw = app.consumer.highwater(faust.types.TP(topic, partition))
        except Exception:  # noqa: BLE001 - lag is best-effort telemetry
            continue
        if hw is not None:
            out[f"lag:{topic}:{partition}"] = max(0, hw - offset - 1)
    topic = batch[0].topic if batch else None
    try:  # an assigned partition with no records at all is caught up (horizon.py)
        for tp in app.consumer.assignment():
            if tp.topic == topic and (tp.topic, tp.partition) not in last \
                    and app.consumer.highwater(tp) == 0:
                out[f"lag:{tp.topic}:{tp.partition}"] = 0
    except Exception:  # noqa: BLE001 - then it holds the agent horizon back, which is safe
        pass
    return out


def _assigned_lag(app: faust.App) -> dict[str, float]:
    """Lag of every assigned partition, also when idle (so a stalled consumer shows)."""
    out: dict[str, float] = {}
    try:
        consumer = app.consumer
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            pos = consumer._last_offset.get(tp) if hasattr(consumer, "_last_offset") else None
            if hw is not None and pos is not None:
                out[f"lag:{tp.topic}:{tp.partition}"] = max(0, hw - pos - 1)
    except Exception:  # noqa: BLE001 - telemetry only
        pass
    return out
