"""The Faust application: the consumer of `dialer.events` feeds raw batches to the pipeline.

Faust does what it is good at here (consumer groups, partition assignment, rebalancing, offset
commits); the state lives in the store so that a batch and its effects commit atomically. Each
fetch of the input topic goes to the pipeline in one hand-off (`fetch.py`) instead of through a
per-message agent stream, whose dispatch cost as much CPU as all the KPI work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
import redis
from faust.types import Message
from redis.exceptions import RedisError

from stream.kpi.contributions import Thresholds
from stream.processing.fetch import BatchConsumer, BatchSink, BatchTransport
from stream.processing.horizon import topic_partitions
from stream.processing.offload import PipelineProcess
from stream.processing.offsets import Action, Exclusion
from stream.processing.pipeline import Pipeline, RawMessage
from stream.processing.pipelining import run_until_committed
from stream.settings import Settings
from stream.store.redis_store import Store, hash_setting_advice

log = logging.getLogger(__name__)
EVICTION_REFUSED_EXIT = 78  # EX_CONFIG


class RedisMisconfigured(SystemExit):
    """The worker refuses to run on this Redis (the message says what to set)."""


def eviction_problem(policy: str, settings: Settings) -> str | None:
    """Why the worker must not run with this `maxmemory-policy`, or None."""
    if policy == "noeviction" or settings.allow_redis_eviction:
        return None
    return (f"callkpi worker: Redis evicts keys (maxmemory-policy is {policy!r}). An evicted "
            "applied offset or entity state makes the worker count events twice. Set "
            "`maxmemory-policy noeviction` (redis.conf, or CONFIG SET maxmemory-policy "
            "noeviction), or CALLKPI_ALLOW_REDIS_EVICTION=1 for a throw-away Redis. See "
            "docs/operations.md#redis-settings")


def check_redis_policy(settings: Settings) -> bool:
    """Refuse to start on an evicting Redis. False: Redis unreachable, checked again later."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=5,
                                  socket_connect_timeout=5)
    try:
        policy = str(client.info("memory").get("maxmemory_policy", "noeviction"))
    except (RedisError, OSError) as exc:
        log.warning("could not read Redis's maxmemory-policy (%s); checked once Redis answers", exc)
        client.close()
        return False
    try:
        config = client.config_get("hash-max-*")  # decode_responses: str names and values
        advice = hash_setting_advice({str(k): str(v) for k, v in config.items()})
    except (RedisError, OSError) as exc:  # a managed Redis may refuse CONFIG
        advice = None
        log.info("could not read Redis's hash-max-listpack-entries (%s): minute hashes are made "
                 "hash tables by the commit whatever it is; docs/operations.md#redis-settings", exc)
    finally:
        client.close()
    if advice:
        log.warning("%s", advice)
    problem = eviction_problem(policy, settings)
    if problem:
        log.error("%s", problem)
        raise RedisMisconfigured(problem)
    if policy != "noeviction":
        log.warning("Redis's maxmemory-policy is %r, allowed by CALLKPI_ALLOW_REDIS_EVICTION: "
                    "evicted offsets or states will double count", policy)
    return True


class LeanApp(faust.App):
    """A Faust app that hands whole fetches to `batch_sinks` (see `fetch.py`), without its
    built-in Monitor sensor: it records per-event statistics that nothing here reads (the
    pipeline keeps its own counters in Redis), on every message."""

    batch_sinks: dict[str, BatchSink]
    batch_hold_ms: int = 0
    batch_max: int = 0
    """(`Settings.batch_hold_ms`, `batch_max`: read by `fetch.BatchConsumer`'s hold.)"""

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
    app.batch_hold_ms, app.batch_max = settings.batch_hold_ms, settings.batch_max
    source = app.topic(settings.input_topic, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw",
                       partitions=settings.partitions)
    dlq = app.topic(settings.dlq_topic, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw", partitions=1)
    policy_checked = check_redis_policy(settings)
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
                            source_partitions=topic_partitions(settings.input_topic, settings.partitions),
                            offset_ahead_policy=settings.offset_ahead_policy)

        async def ingest_batch(messages: list[Message], batch: list[RawMessage]) -> None:
            gauges, ends = _partition_ends(app, batch)
            prepared = await run_until_committed(pipeline, pipeline.check(batch, gauges, ends))
            settle(app, messages, prepared.excluded)

    async def ingest(messages: list[Message]) -> None:
        """One fetch of the input topic: processed (or queued to the pipeline process) in
        order; each message is acked once its batch is committed to Redis."""
        batch = [RawMessage(m.topic, m.partition, m.offset, m.value or b"",
                            int((m.timestamp or 0) * 1000)) for m in messages]
        await ingest_batch(messages, batch)

    app.topics.add(source)
    app.batch_sinks = {settings.input_topic: ingest}

    async def after_seek(consumer: Any) -> None:
        """Seek back every assigned partition whose events Redis lost (its applied offset + 1
        behind Kafka's committed offset), before anything is consumed."""
        tps = [tp for tp in consumer.assignment() if tp.topic == settings.input_topic]
        try:
            applied = await store.applied_offsets(f"{tp.topic}:{tp.partition}" for tp in tps)
        except (RedisError, OSError) as exc:  # the pipeline's own check catches it later
            log.warning("could not compare Redis's applied offsets with Kafka's: %s", exc)
            return
        for tp in tps:
            committed = consumer._committed_offset.get(tp) or 0
            done = applied[f"{tp.topic}:{tp.partition}"]
            if done + 1 < committed:
                log.warning("Redis's applied offset of %s:%d is %d, behind Kafka's committed "
                            "offset %d: Redis lost commits. Reading it again from %d",
                            tp.topic, tp.partition, done, committed, done + 1)
                await consumer.seek(tp, done + 1)

    app.after_seek = after_seek  # type: ignore[attr-defined]

    @app.task
    async def declare_dlq() -> None:
        await dlq.maybe_declare()

    @app.timer(interval=5.0)
    async def heartbeat() -> None:
        nonlocal policy_checked
        now = int(time.time() * 1000)
        try:
            if not policy_checked:
                problem = eviction_problem(str((await store.memory()).get("maxmemory_policy")),
                                           settings)
                if problem:
                    log.error("%s", problem)
                    logging.shutdown()
                    os._exit(EVICTION_REFUSED_EXIT)
                policy_checked = True
            await store.heartbeat(worker_id, now, _assigned_lag(app))
            await store.prune_live_calls(now - settings_call_expiry_ms(app))
            await store.retire_idle_watermarks(now)
        except (RedisError, OSError) as exc:  # a Redis outage must not crash the worker
            log.warning("heartbeat skipped, Redis unavailable: %s", exc)

    async def forget_heartbeat(*_: Any, **__: Any) -> None:
        """Sent once the consumer has stopped (Faust's `on_before_shutdown`)."""
        try:  # bounded: a stop must not hang on a Redis that does not answer
            await asyncio.wait_for(store.forget_worker(worker_id), 2.0)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("heartbeat left behind, Redis unavailable: %s", exc)

    # (mode's signal stubs want a receiver typed with its own signal class; any callable works)
    app.on_before_shutdown.connect(cast(Any, forget_heartbeat))

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
        gauges, ends = _partition_ends(app, batch)
        done = await child.submit(batch, gauges, ends)

        def ack(fut: Any) -> None:
            if not fut.cancelled() and fut.exception() is None:
                settle(app, messages, fut.result())
        done.add_done_callback(ack)

    return ingest_batch


def settle(app: faust.App, messages: list[Message], excluded: dict[str, Exclusion]) -> None:
    """A batch is committed: ack its messages, except those of partitions left out of it,
    which are read again (`rewind`) or no longer consumed (`hold`)."""
    for m in messages:
        if not excluded or f"{m.topic}:{m.partition}" not in excluded:
            m.ack(app.consumer)
    for ex in excluded.values():
        topic, _, partition = ex.tp.rpartition(":")
        tp = faust.types.TP(topic, int(partition))
        if ex.action is Action.HOLD:
            cast(BatchConsumer, app.consumer).hold(tp)
        else:
            asyncio.ensure_future(_rewind(app, tp, ex.offset))


async def _rewind(app: faust.App, tp: Any, offset: int) -> None:
    try:
        await app.consumer.seek(tp, offset)
    except Exception as exc:  # noqa: BLE001 - revoked meanwhile: its next owner checks again
        log.warning("could not seek %s to %d: %s", tp, offset, exc)


def settings_call_expiry_ms(app: faust.App) -> int:
    return int(getattr(app.conf, "callkpi_call_expiry_ms", 1_800_000))


def _partition_ends(app: faust.App, batch: list[RawMessage]
                    ) -> tuple[dict[str, float], dict[str, int]]:
    """Consumer lag of the partitions in this batch (highwater − next offset to read), and their
    high watermarks as the fetches reported them (tansu's ListOffsets reads one batch short)."""
    last: dict[tuple[str, int], int] = {}
    for m in batch:
        last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)
    lag: dict[str, float] = {}
    ends: dict[str, int] = {}
    for (topic, partition), offset in last.items():
        try:
            hw = app.consumer.highwater(faust.types.TP(topic, partition))
        except Exception:  # noqa: BLE001 - unknown: the ahead check waits for the next fetch
            continue
        if hw is not None:
            lag[f"lag:{topic}:{partition}"] = max(0, hw - offset - 1)
            ends[f"{topic}:{partition}"] = int(hw)
    batch_topic = batch[0].topic if batch else None
    try:  # an assigned partition with no records at all is caught up (horizon.py)
        for tp in app.consumer.assignment():
            if tp.topic == batch_topic and (tp.topic, tp.partition) not in last \
                    and app.consumer.highwater(tp) == 0:
                lag[f"lag:{tp.topic}:{tp.partition}"] = 0
    except Exception:  # noqa: BLE001 - then it holds the agent horizon back, which is safe
        pass
    return lag, ends


def _assigned_lag(app: faust.App) -> dict[str, float]:
    """Lag of every assigned partition, also when idle (so a stalled consumer shows): the
    high watermark against the last offset read, which `fetch.py` records in Faust's
    `_read_offset` (tests/test_upstream.py guards it). A partition not read yet has none."""
    out: dict[str, float] = {}
    try:
        consumer = app.consumer
        read = consumer._read_offset  # type: ignore[attr-defined]
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            pos = read.get(tp)
            if hw is not None and pos is not None:
                out[f"lag:{tp.topic}:{tp.partition}"] = max(0, hw - pos - 1)
    except Exception:  # noqa: BLE001 - telemetry only
        pass
    return out
