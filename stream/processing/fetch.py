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

A fetch returns as soon as the broker has anything, so light traffic makes many small batches,
and a batch's Redis commit costs mostly per field and per key, not per event. With a hold
(`Settings.batch_hold_ms`) the fetches of a sink's topic are gathered until the oldest has
waited that long or they reach `batch_max` records, then handed over as one. Gathered messages
are tracked but not acked, like any uncommitted batch: a crash or a rebalance meanwhile only
means they are read again, and the commit's offset guard skips what was applied.
"""

from __future__ import annotations

import asyncio
import time
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


class Gathered:
    """The messages of sink topics fetched but not yet handed over (the hold, above)."""

    def __init__(self, hold_s: float, most: int) -> None:
        self.hold_s = hold_s
        self.most = most
        self.pending: dict[str, list[Message]] = {}
        self.since: dict[str, float] = {}
        """Per topic with messages pending, when the oldest was fetched (monotonic seconds)."""

    def wait_s(self, now: float, idle_s: float) -> float:
        """How long the next fetch may wait: no longer than the oldest pending message may."""
        if not self.since:
            return idle_s
        return max(0.0, min(idle_s, min(self.since.values()) + self.hold_s - now))

    def due(self, fetched: dict[str, list[Message]], now: float) -> list[tuple[str, list[Message]]]:
        """What to hand over now, per topic in fetch order: with no hold, this fetch. Else a
        topic's messages once the oldest has waited `hold_s` or they reach `most`, and those
        this fetch would take past `most` before it (the fetch then starts the next batch)."""
        if self.hold_s <= 0:
            return list(fetched.items())
        out: list[tuple[str, list[Message]]] = []
        pending, since = self.pending, self.since
        for topic, messages in fetched.items():
            held = pending.get(topic)
            if held and len(held) + len(messages) > self.most:
                out.append((topic, pending.pop(topic)))
                held = None
            if held:
                held.extend(messages)
            else:
                pending[topic], since[topic] = list(messages), now
        for topic in list(pending):
            if now - since[topic] >= self.hold_s or len(pending[topic]) >= self.most:
                del since[topic]
                out.append((topic, pending.pop(topic)))
        return out

    def take_all(self) -> list[tuple[str, list[Message]]]:
        """Everything held, to hand over now (the fetch loop is stopping)."""
        out = list(self.pending.items())
        self.pending.clear()
        self.since.clear()
        return out


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
        self.gather = Gathered(getattr(self.app, "batch_hold_ms", 0) / 1000.0,
                               getattr(self.app, "batch_max", 0))

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def hold(self, tp: Any) -> None:
        self.held.add(tp)
        self.pause_partitions([tp])

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        """What the hold keeps goes out first. Faust then waits until every tracked message is
        acked (`wait_empty`), and the fetch loop cannot hand anything over meanwhile: its next
        fetch waits behind this callback in the consumer thread."""
        await self._hand_over_held()
        await super().on_partitions_revoked(revoked)

    async def _hand_over_held(self) -> None:
        """Everything the hold keeps, as the batches it would have become (tracked messages:
        only their committed batch acks them)."""
        sinks = self._sinks()
        for topic, messages in self.gather.take_all():
            await sinks[topic](messages)

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
        gather = self.gather
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = self.getmany(timeout=gather.wait_s(time.monotonic(), 1.0))
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
                for topic, messages in gather.due(fetched, time.monotonic()):
                    # Not cancelled when the flow is suspended (as Faust's per-message
                    # callbacks are): these messages are tracked, and a rebalance waits for
                    # their acks (`wait_empty`), which only their committed batch gives.
                    await sinks[topic](messages)
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
            await self._hand_over_held()


class BatchTransport(faust_aiokafka.Transport):
    """The `kafka://` transport, with `BatchConsumer`."""

    Consumer = BatchConsumer
