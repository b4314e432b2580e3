"""The batch step in a child process, so that Faust's event loop only moves messages.

Profiling the worker showed its one thread split about evenly between Faust's own per-message
work and the batch step (validate, process, commit). Here the Faust process hands each batch to
a child process and goes straight back to consuming, so the two halves run on two cores. A
message is acked to Faust (and so may have its offset committed to Kafka) only after the child
has committed its batch to Redis; exactly-once does not rest on that alone, since the Redis
commit is guarded by the applied offsets and a redelivered batch is skipped
(docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from stream.kpi.contributions import Thresholds
from stream.processing import collector
from stream.processing.horizon import topic_partitions
from stream.processing.offsets import Exclusion
from stream.processing.pipeline import Pipeline, RawMessage
from stream.processing.pipelining import Overlapped
from stream.settings import Settings
from stream.store.redis_store import Store

log = logging.getLogger(__name__)
IDLE_S = 1.0
"""No batch for this long: the pipeline process is idle, a good time for a full collection."""


class PipelineProcess:
    """The parent's handle on the child: submit batches, learn when each is committed.

    Batches are committed in submission order. At most `max_in_flight` are outstanding, so a
    slow Redis slows consumption instead of filling memory."""

    def __init__(self, settings: Settings, thresholds: Thresholds, worker_id: str,
                 on_failure: Callable[[str], None], max_in_flight: int = 3) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that runs threads and an event loop
        self._requests: Any = ctx.Queue()
        self._replies: Any = ctx.Queue()
        self._proc = ctx.Process(target=child_main, name="callkpi-pipeline", daemon=True,
                                 args=(settings, thresholds, worker_id, self._requests,
                                       self._replies, os.getpid()))
        self._on_failure = on_failure
        self._max_in_flight = max_in_flight
        self._pending: dict[int, asyncio.Future[dict[str, Exclusion]]] = {}
        self._seq = 0
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self._max_in_flight)
        self._proc.start()
        threading.Thread(target=self._read_replies, name="callkpi-pipeline-replies",
                         daemon=True).start()

    async def submit(self, batch: list[RawMessage], gauges: dict[str, float],
                     highwaters: dict[str, int]) -> asyncio.Future[dict[str, Exclusion]]:
        """Queue a batch; the returned future resolves once it is committed to Redis, to the
        partitions left out of it (their messages are not to be acked)."""
        if self._loop is None:
            self.start()
        assert self._slots is not None and self._loop is not None
        await self._slots.acquire()
        self._seq += 1
        done: asyncio.Future[dict[str, Exclusion]] = self._loop.create_future()
        done.add_done_callback(lambda _: self._slots.release())  # type: ignore[union-attr]
        self._pending[self._seq] = done
        self._requests.put((self._seq, columns(batch), gauges, highwaters))
        return done

    def _read_replies(self) -> None:
        while True:
            try:
                seq, error, excluded = self._replies.get(timeout=1.0)
            except queue.Empty:
                if not self._proc.is_alive():
                    self._fail(f"the pipeline process exited with {self._proc.exitcode}")
                    return
                continue
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._resolve, seq, error, excluded)
            if error:
                return

    def _resolve(self, seq: int, error: str | None, excluded: dict[str, Exclusion]) -> None:
        done = self._pending.pop(seq)
        if error:
            self._fail(error)
        else:
            done.set_result(excluded)

    def _fail(self, why: str) -> None:
        log.error("batch step failed, stopping the worker (nothing uncommitted is acked): %s", why)
        self._on_failure(why)


Columns = tuple[tuple[object, ...], ...]


def columns(batch: list[RawMessage]) -> Columns:
    """A batch as one tuple per field: pickled and unpickled without a Python call per message
    (a list of NamedTuples costs one in each process: 2.4 and 1.6 µs per message, against 0.7
    and 0.8 µs this way; BENCHMARKS.md)."""
    return tuple(zip(*batch, strict=True))


def from_columns(fields: Columns) -> list[RawMessage]:
    new = tuple.__new__
    return [new(RawMessage, row) for row in zip(*fields, strict=True)]


def child_main(settings: Settings, thresholds: Thresholds, worker_id: str, requests: Any,
               replies: Any, parent_pid: int) -> None:
    """The child: commit batches in order until the parent goes away. Ctrl-C reaches the whole
    process group; the parent decides when to stop, so the child ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    collector.start()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    asyncio.run(_serve(settings, thresholds, worker_id, requests, replies))


def _exit_when_orphaned(parent_pid: int) -> None:
    """A SIGKILLed worker must leave no child behind, even one blocked reading half a batch or
    retrying a dead Redis. Exiting mid-commit is as safe as any crash: the commit is atomic."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


async def _serve(settings: Settings, thresholds: Thresholds, worker_id: str, requests: Any,
                 replies: Any) -> None:
    store = Store(settings.redis_url, settings.key_prefix, settings.zone)
    pipeline = Pipeline(store, DeadLetterProducer(settings), thresholds,
                        state_horizon_ms=int(settings.state_horizon_hours * 3_600_000),
                        agent_state_ms=int(settings.agent_state_hours * 3_600_000),
                        worker_id=worker_id, cache_bytes=int(settings.state_cache_mb * 2**20),
                        source_partitions=topic_partitions(settings.input_topic, settings.partitions),
                        offset_ahead_policy=settings.offset_ahead_policy)
    batches = Overlapped(pipeline, lambda seq, error, excluded: replies.put((seq, error, excluded)))
    loop = asyncio.get_running_loop()
    collected, busy = time.monotonic(), False
    while True:
        try:
            seq, batch, gauges, highwaters = requests.get_nowait()
        except queue.Empty:
            await batches.release()  # no batch waiting to read first: the commit goes out now
            try:
                seq, batch, gauges, highwaters = await loop.run_in_executor(None, requests.get,
                                                                            True, IDLE_S)
            except queue.Empty:
                seq = None
        if (seq is None and busy) or time.monotonic() - collected > collector.FULL_GC_EVERY_S:
            collector.full()
            collected, busy = time.monotonic(), False
        if seq is not None:
            await batches.submit(seq, pipeline.check(from_columns(batch), gauges, highwaters))
            collector.after_batch()
            busy = True


class DeadLetterProducer:
    """Sends dead-letter records with kafka-python and waits for the broker's ack."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: Any = None

    async def __call__(self, key: bytes, value: bytes) -> None:
        if self._producer is None:
            from kafka import KafkaProducer
            # Kafka's default limit: a default broker (message.max.bytes) refuses larger records
            self._producer = KafkaProducer(bootstrap_servers=self._settings.bootstrap, acks="all",
                                           linger_ms=5, max_request_size=1 << 20)
        future = self._producer.send(self._settings.dlq_topic, key=key, value=value)
        await asyncio.get_running_loop().run_in_executor(None, future.get, 30)
