"""Recompute a store from the input topic's retained events, with the worker's own pipeline.

`callkpi rebuild` (stream/cli/rebuild.py) drives this. It reads every partition of the input
topic from its oldest retained record, without joining the workers' consumer group, and feeds
the records to the same batch step the worker runs (`Pipeline`, overlapped as in the pipeline
process), committed to a *target* store: a fresh key prefix or a fresh Redis. Because every
commit is the worker's offset-guarded commit, a rebuild is exact for the same reasons a worker
is (docs/architecture.md): it can be interrupted and resumed, and it can run alongside workers
that write the same target (one of two writers of a partition commits, the other skips what
was applied).

Two things differ from a worker, both so that the rebuilt store equals what a live run stored:

- the contract's clock rules (future_timestamp, too_old) are judged at the record's Kafka
  timestamp (its publish time, close to when a live worker saw it), not at the wall clock of
  the rebuild, which may be days later;
- the rebuild writes no heartbeat, no consumer-lag gauges, no latency histogram and no `late`
  count (those describe live consumption, not the events): it counts `rebuilt` instead.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from stream.contract import Event, Rejection, validate
from stream.kpi.contributions import Thresholds
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.processing.pipeline import DeadLetter, Job, Pipeline, RawMessage
from stream.processing.pipelining import Overlapped
from stream.settings import Settings
from stream.store.redis_store import Store

log = logging.getLogger(__name__)
LIVE_ONLY_COUNTERS = ("late", "latency_")
CLOCK_REASONS = frozenset({"future_timestamp", "too_old"})
"""Rejections that depend on when an event is validated."""
"""Pipeline counters about live consumption, which a rebuild does not reproduce."""


FETCH_BYTES_PER_PARTITION = 256 * 1024
"""Each fetch takes at most this much of every partition, so that a backlog is read at about
the same pace on every partition: read one partition after the other, one partition runs hours
of event time ahead of another, and the agent-state horizon waits for the slowest
(docs/architecture.md). (Pausing partitions stalled kafka-python's fetcher.)"""


class RebuildError(Exception):
    """A rebuild that cannot be exact as asked (the reason is for the operator)."""


class PartitionPlan(NamedTuple):
    """What one partition contributes: records [start, end) as of the rebuild's start."""

    tp: str
    oldest: int  # the oldest offset the topic still retains
    start: int  # the first offset to read (oldest, or past what the target already holds)
    end: int  # the high watermark when the rebuild started


class Progress(NamedTuple):
    """Reported after every committed batch and every few seconds while following."""

    read: int  # records committed to the target since the rebuild started
    total: int  # records in the plan: the sum of (end - start) over partitions
    lag: int  # records still to read, against the newest high watermarks known
    planned_done: bool  # every record of the plan is committed
    rate: float  # records per second


class RebuildPipeline(Pipeline):
    """The worker's pipeline, with the contract's clock at each record's publish time and
    without the counters of live consumption (see the module docstring)."""

    def check(self, messages: list[RawMessage], gauges: dict[str, float] | None = None,
              *args: Any, **kwargs: Any) -> Job:
        """The worker's validation; where the clock decided (an event ahead of its record's
        publish time, a clock rejection), validated again at the record's timestamp."""
        job = super().check(messages, gauges, *args, **kwargs)
        job.checked = [(m, validate(m.value, now_ms=m.timestamp_ms, max_age_ms=MAX_EVENT_AGE_MS))
                       if m.timestamp_ms and _clock_decided(m, r) else (m, r)
                       for m, r in job.checked]
        return job

    def _commit_batch(self, *args: Any, **kwargs: Any) -> Any:
        batch = super()._commit_batch(*args, **kwargs)
        batch.pipeline = {k: v for k, v in batch.pipeline.items()
                          if not k.startswith(LIVE_ONLY_COUNTERS)}
        batch.pipeline["rebuilt"] = batch.pipeline.get("consumed", 0)
        batch.gauges = {k: v for k, v in batch.gauges.items() if not k.startswith("lag:")}
        batch.worker = ""
        return batch


def _clock_decided(m: RawMessage, result: Event | Rejection) -> bool:
    """Whether the validation clock may have decided `result`: a clock rule rejected it, or it
    is an event newer than its record (at the record's time it may be in the future)."""
    if isinstance(result, Rejection):
        return result.reason in CLOCK_REASONS
    return result.ts_ms > m.timestamp_ms


async def no_dead_letter(key: bytes, value: bytes) -> None:
    """A rebuild does not dead-letter again what the live workers already dead-lettered (the
    rejection counters are rebuilt all the same: they are part of every commit)."""


class TopicReader:
    """The input topic's partitions, read with a plain consumer outside the workers' group
    (kafka-python, blocking: called from a thread)."""

    def __init__(self, settings: Settings, batch_max: int) -> None:
        from kafka import KafkaConsumer
        self.topic = settings.input_topic
        self.consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      max_poll_records=batch_max, fetch_max_wait_ms=100,
                                      max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,
                                      consumer_timeout_ms=1000)
        self.partitions = self._partitions()

    def _partitions(self) -> list[Any]:
        from kafka import TopicPartition
        deadline = time.monotonic() + 30
        while True:
            found = self.consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            if time.monotonic() > deadline:
                raise RebuildError(f"topic {self.topic!r} not found at the broker")
            time.sleep(0.5)

    def bounds(self) -> dict[str, tuple[int, int]]:
        """tp → (oldest retained offset, high watermark)."""
        oldest = self.consumer.beginning_offsets(self.partitions)
        newest = self.consumer.end_offsets(self.partitions)
        return {f"{tp.topic}:{tp.partition}": (oldest[tp], newest[tp]) for tp in self.partitions}

    def high_watermarks(self) -> dict[str, int]:
        newest = self.consumer.end_offsets(self.partitions)
        return {f"{tp.topic}:{tp.partition}": newest[tp] for tp in self.partitions}

    def start_at(self, plan: list[PartitionPlan]) -> None:
        self.consumer.assign(self.partitions)
        by_tp = {p.tp: p for p in plan}
        for tp in self.partitions:
            self.consumer.seek(tp, by_tp[f"{tp.topic}:{tp.partition}"].start)

    def seek(self, tp: str, offset: int) -> None:
        for p in self.partitions:
            if f"{p.topic}:{p.partition}" == tp:
                self.consumer.seek(p, offset)

    def poll(self, timeout_ms: int) -> tuple[list[RawMessage], dict[str, float]]:
        """Records of one fetch, and the consumer lag of their partitions after them (the
        high watermark of the fetch − the next offset), as the worker's `lag:<tp>` gauges: the
        agent-state horizon needs to know which partitions are caught up."""
        records = self.consumer.poll(timeout_ms=timeout_ms)
        lags: dict[str, float] = {}
        for tp, rs in records.items():
            hw = self.consumer.highwater(tp)
            if hw is not None and rs:
                lags[f"lag:{tp.topic}:{tp.partition}"] = max(0, hw - rs[-1].offset - 1)
        return ([RawMessage(r.topic, r.partition, r.offset, r.value or b"", int(r.timestamp or 0))
                 for rs in records.values() for r in rs], lags)

    def close(self) -> None:
        self.consumer.close()


def make_plan(bounds: dict[str, tuple[int, int]], applied: dict[str, int],
              allow_truncated: bool) -> list[PartitionPlan]:
    """Where each partition's rebuild starts: at its oldest retained record, or just past what
    the target already holds (a resumed rebuild). Refuses a plan with a hole: records that are
    no longer retained and that the target does not hold yet, unless `allow_truncated`."""
    plan, holes = [], []
    for tp, (oldest, end) in sorted(bounds.items()):
        next_needed = applied.get(tp, -1) + 1
        if next_needed < oldest:
            holes.append(f"{tp}: offsets {next_needed}..{oldest - 1}")
        plan.append(PartitionPlan(tp, oldest, max(oldest, next_needed), end))
    if holes and not allow_truncated:
        raise RebuildError(
            "the topic no longer retains the oldest events (" + "; ".join(holes) + "): a rebuild "
            "would silently miss them. Rebuild only what is retained with --allow-truncated "
            "(the KPIs of the windows before the oldest retained event will be short).")
    return plan


@dataclass
class Rebuild:
    """One rebuild run into `target` (see the module docstring)."""

    settings: Settings
    thresholds: Thresholds
    target: Store
    follow: bool = False
    """Keep applying new records after the plan is done, until `stop` is set (a switch-over
    with live traffic: docs/operations.md)."""
    allow_truncated: bool = False
    dead_letter: DeadLetter = no_dead_letter
    on_progress: Callable[[Progress], None] = lambda p: None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    plan: list[PartitionPlan] = field(default_factory=list)

    async def run(self) -> Progress:
        """Rebuild; returns the final progress once everything read is committed."""
        s = self.settings
        reader = await asyncio.to_thread(TopicReader, s, s.batch_max)
        try:
            return await self._run(reader)
        finally:
            await asyncio.to_thread(reader.close)

    async def _run(self, reader: TopicReader) -> Progress:
        s = self.settings
        bounds = await asyncio.to_thread(reader.bounds)
        applied, _, _ = await self.target.load(sorted(bounds), ())
        self.plan = make_plan(bounds, applied, self.allow_truncated)
        await asyncio.to_thread(reader.start_at, self.plan)
        extra: dict[str, Any] = {}
        if "source_partitions" in inspect.signature(Pipeline.__init__).parameters:
            # a pipeline whose agent horizon waits for every partition of the topic
            extra["source_partitions"] = [p.tp for p in self.plan]
        pipeline = RebuildPipeline(self.target, self.dead_letter, self.thresholds,
                                   state_horizon_ms=int(s.state_horizon_hours * 3_600_000),
                                   agent_state_ms=int(s.agent_state_hours * 3_600_000),
                                   worker_id="", cache_bytes=int(s.state_cache_mb * 2**20),
                                   **extra)
        failures: list[str] = []
        read = 0
        started = time.monotonic()
        position = {p.tp: p.start for p in self.plan}
        ends = {p.tp: p.end for p in self.plan}
        total = sum(p.end - p.start for p in self.plan)
        newest = dict(ends)
        sizes: dict[int, int] = {}

        def progress() -> Progress:
            lag = sum(max(0, newest[tp] - position[tp]) for tp in position)
            done = all(position[tp] >= ends[tp] for tp in position) and not sizes
            return Progress(read, total, lag, done, read / max(time.monotonic() - started, 1e-9))

        rewinds: dict[str, int] = {}

        def reply(seq: int, error: str | None, excluded: dict[str, Any] | None = None) -> None:
            """A batch committed (or failed). `excluded`: partitions the worker's offset check
            left out of it (Redis rolled back under the rebuild: read them again from the
            store's applied offset; or the store is ahead of the topic: stop)."""
            nonlocal read
            if error:
                failures.append(error)
                return
            read += sizes.pop(seq, 0)
            for ex in (excluded or {}).values():
                if str(getattr(ex.action, "value", ex.action)) == "rewind":
                    rewinds[ex.tp] = ex.offset
                else:
                    failures.append(f"the target store is ahead of {ex.tp} (applied offset "
                                    f"{ex.offset}): it belongs to another topic or cluster")
            self.on_progress(progress())

        batches = Overlapped(pipeline, reply)
        seq = 0
        last_refresh = time.monotonic()
        while not failures and not self.stop.is_set():
            planned = all(position[tp] >= ends[tp] for tp in position)
            if rewinds:
                for tp, offset in list(rewinds.items()):
                    del rewinds[tp]
                    position[tp] = offset
                    await asyncio.to_thread(reader.seek, tp, offset)
            messages, lags = await asyncio.to_thread(reader.poll, 500)
            if planned and not messages and not self.follow:
                # Past the plan and nothing more: done. (Not at the plan's end already: a
                # broker's listed high watermark can be short of its last batch (tansu lists
                # the last batch's base offset + 1), the fetch shows what is really there.)
                break
            if time.monotonic() - last_refresh > 2.0 or (planned and not messages):
                newest = await asyncio.to_thread(reader.high_watermarks)
                last_refresh = time.monotonic()
                if not messages:
                    self.on_progress(progress())
            if not messages:
                await batches.release()  # nothing to read first: the held commit goes out now
                continue
            for m in messages:
                position[m.tp] = max(position[m.tp], m.offset + 1)
            seq += 1
            sizes[seq] = len(messages)
            await batches.submit(seq, pipeline.check(messages, lags))
        await batches.drain()
        if failures:
            raise RebuildError(f"a batch could not be committed: {failures[0]}")
        final = progress()
        self.on_progress(final)
        return final


async def target_is_empty(store: Store) -> bool:
    """No key under the target's prefix (a fresh prefix or a fresh Redis)."""
    async for _ in store.redis.scan_iter(match=store.layout.prefix + "*", count=1000):
        return False
    return True


async def group_committed(settings: Settings) -> dict[str, int] | None:
    """The workers' consumer group's committed offsets (tp → next offset to read), or None when
    the broker cannot say. A store that has applied every record below these is complete for
    workers that resume from them (docs/operations.md, "Rebuild from Kafka")."""
    def fetch() -> dict[str, int] | None:
        from kafka import KafkaConsumer, TopicPartition
        # A consumer with the group's id that never subscribes does not join the group: it
        # only reads the group's committed offsets (OffsetFetch), and commits nothing.
        try:
            consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap,
                                     group_id=settings.app_id, enable_auto_commit=False)
        except Exception as exc:  # noqa: BLE001 - advisory only
            log.warning("the consumer group's committed offsets could not be read: %r", exc)
            return None
        try:
            found = consumer.partitions_for_topic(settings.input_topic) or set()
            out: dict[str, int] = {}
            for p in sorted(found):
                offset = consumer.committed(TopicPartition(settings.input_topic, p))
                if offset is not None and offset >= 0:
                    out[f"{settings.input_topic}:{p}"] = offset
            return out
        except Exception as exc:  # noqa: BLE001 - advisory only
            log.warning("the consumer group's committed offsets could not be read: %r", exc)
            return None
        finally:
            consumer.close()
    return await asyncio.to_thread(fetch)


def covers(applied: dict[str, int], committed: dict[str, int]) -> bool:
    """Whether a store's applied offsets reach every committed offset of the group (workers
    started on this store then miss nothing, also without seeking back)."""
    return all(applied.get(tp, -1) >= offset - 1 for tp, offset in committed.items())
