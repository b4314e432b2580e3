"""Faust's Kafka consumer, handing each fetch of the input topic to the pipeline in one call.

Faust dispatches every message on its own. The consumer wraps each in `wait_first`, which
means four futures and an `asyncio.wait`. The conductor and the topic's queue then pass the
message on. Finally the agent's stream turns it into an event and, with `take_events`, back
into a batch. Profiles of a do-nothing agent put that at about 200 µs of CPU per message on
the benchmark machine: as much as all the KPI work (BENCHMARKS.md).

This consumer keeps everything else Faust does: the consumer group, partition assignment,
rebalancing and its flow control, message tracking, acks and offset commits. Only the
per-message hand-off changes, for topics that have a batch sink: the whole fetch goes to one
coroutine, once. Other topics take Faust's usual path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message

BatchSink = Callable[[list[Message]], Awaitable[None]]
"""Receives one fetch's messages of a topic, in partition order. It owns acking them."""

AfterSeek = Callable[[Any], Awaitable[None]]
"""Runs once Faust has sought the assigned partitions to their committed offsets (with the
consumer): the worker seeks further back where Redis is behind (`offsets.py`)."""


FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold a fetch for more data (Faust sets 1,500 ms). A shorter wait is
more fetch requests when traffic is light, and fresher batches always."""


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """The aiokafka consumer with a per-fetch hand-off for topics in `app.batch_sinks`."""

    held: set[Any]
    """Partitions not consumed (Redis ahead of them, policy `pause`): fetched records of these
    are dropped untracked, so nothing of them is acked. Cleared at the next assignment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = set()

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def hold(self, tp: Any) -> None:
        self.held.add(tp)
        self.pause_partitions([tp])

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, then the worker's own (`AfterSeek`)."""
        await super().perform_seek()
        self.held.clear()
        after = getattr(self.app, "after_seek", None)
        if after is not None:
            await after(self)

    def _sinks(self) -> dict[str, BatchSink]:
        return getattr(self.app, "batch_sinks", {})

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - via the worker
        """Faust's `Consumer._drain_messages` with one `wait_first` per fetch and topic,
        instead of one per message. Gap tracking, commit triggering and read offsets are as
        in Faust."""
        callback = self.callback
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        acks_enabled_for = self.app.topics.acks_enabled_for
        track = self.track_message
        sinks = self._sinks()
        held = self.held
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                fetched: dict[str, list[Message]] = {}
                async for tp, message in ait:
                    if tp in held:
                        continue
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is not None and offset < r_offset:
                        continue  # already read (Faust drops these too)
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if message.topic in sinks:
                        track(message)
                        fetched.setdefault(message.topic, []).append(message)
                    else:
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, offset)
                for topic, messages in fetched.items():
                    await self.wait_first(sinks[topic](messages), self.suspend_flow.wait())
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


class BatchTransport(faust_aiokafka.Transport):
    """The `kafka://` transport, with `BatchConsumer`."""

    Consumer = BatchConsumer
