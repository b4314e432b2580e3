"""The worker's batch step: validate, skip what is applied, load, process, dead-letter, commit.

Independent of Faust so that it can be driven by any consumer (and tested directly); the Faust
agent in `app.py` only feeds it batches and acks them after `handle` returns.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from mypy_extensions import mypyc_attr
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError, ResponseError

from stream.contract import Event, Rejection, validate
from stream.kpi.contributions import Thresholds
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.processing import agent_parts, horizon
from stream.processing.dead_letter import DeadLetter, Delivery, send_dead_letter
from stream.processing.loading import Consulted, Loader, State, StoreView
from stream.processing.offsets import Exclusion, OffsetCheck
from stream.state.batch import Loaded, Outcome, agents_needed, call_ids, process
from stream.state.call_state import CallState
from stream.state.encoding import dumps
from stream.store.commit import (
    LATENCY_BUCKETS,
    CommitBatch,
    CommitConflict,
    CommitRejected,
    EntityWrite,
    encode_ahead,
)
from stream.store.redis_store import Store

log = logging.getLogger(__name__)
CONFLICT_BACKOFF_S = 0.005
CONFLICT_BACKOFF_MAX_S = 1.0
"""Retry delays after a conflict grow from 5 ms to at most 1 s, each drawn at random below its
bound (full jitter), so two workers that collided do not collide again in step. There is no cap
on attempts: events of one agent arrive on several partitions by design, so contention is
normal load, never a reason to stop (docs/operations.md#contention-between-workers)."""
SPLIT_AFTER_CONFLICTS = 3
"""Conflicts in a row after which a batch is committed in halves (`Pipeline._run_halves`)."""
TRANSIENT_REPLIES = (OutOfMemoryError, ReadOnlyError)
"""Error replies that end by themselves (memory freed, failover finished): retried like an outage."""


class RawMessage(NamedTuple):
    """One consumed record as the pipeline needs it (a tuple: it crosses to the pipeline
    process 2,000 at a time, and tuples pickle and build fastest)."""

    topic: str
    partition: int
    offset: int
    value: bytes
    timestamp_ms: int  # the Kafka record's timestamp (publish time): only for latency

    @property
    def tp(self) -> str:
        return f"{self.topic}:{self.partition}"


Checked = tuple[RawMessage, Event | Rejection]
"""A consumed record and what validation made of it."""

_dumps = dumps  # compact JSON, its encoder made once (`stream/state/encoding.py`)


@dataclass
class Job:
    """One batch from consumption to commit: validated once, prepared once or more."""

    checked: list[Checked]
    gauges: dict[str, float]
    dead_lettered: set[tuple[str, int]] = field(default_factory=set)
    """Rejections already sent to the dead-letter topic (a re-prepare does not send them again)."""
    highwaters: dict[str, int] = field(default_factory=dict)
    """tp → the partition's end when fetched (next offset to be written), if known."""
    serial: int = 0
    dead_letter_degraded: Counter[str] = field(default_factory=Counter)
    """Records sent minimal or lost (`dead_letter.Delivery`), counted with the batch's commit."""

    def halves(self) -> tuple[Job, Job]:
        """The batch's first and second half (each partition's messages stay contiguous: the
        fetch lists them partition by partition, in offset order). Both keep the serial, so
        the offset check sees one batch. Dead letters already sent stay sent, and their
        degraded deliveries are counted once, with the first half."""
        k = len(self.checked) // 2
        return (Job(self.checked[:k], self.gauges, self.dead_lettered, self.highwaters, self.serial,
                    self.dead_letter_degraded),
                Job(self.checked[k:], self.gauges, self.dead_lettered, self.highwaters, self.serial))


@dataclass
class Prepared:
    """A processed batch ready to commit, and the store as it will be after the commit."""

    batch: CommitBatch
    now_ms: int
    ahead: Prepared | None
    after: StoreView
    excluded: dict[str, Exclusion] = field(default_factory=dict)
    """Partitions left out of the batch (`offsets.py`): their messages must not be acked."""
    consulted: Consulted | None = None
    """What it asked `ahead`'s view for (None: prepared on Redis alone)."""
    taken: dict[str, int] = field(default_factory=dict)
    """The counts of `Pipeline.decisions` it carries (given back if it is not committed)."""
    redo_of: Prepared | None = None
    """The preparation of the same batch this one replaces, which was never applied (it
    conflicted, or was prepared on a batch that had to be redone): a batch prepared on that
    one may still hold on this one (`pipelining.Overlapped`)."""
    split: bool = False
    """Only the second half of a batch committed in halves (`after` then lacks the first's)."""


@mypyc_attr(allow_interpreted_subclasses=True)  # native build: RebuildPipeline (pure) extends it
class Pipeline:
    def __init__(self, store: Store, dead_letter: DeadLetter, thresholds: Thresholds,
                 *, state_horizon_ms: int, agent_state_ms: int = 6 * 3_600_000,
                 worker_id: str = "", cache_bytes: int = 64 << 20,
                 clock: Callable[[], float] = time.time,
                 source_partitions: Iterable[str] = (), offset_ahead_policy: str = "pause") -> None:
        self.worker_id = worker_id
        self.source_partitions = tuple(source_partitions)
        """Every `<topic>:<partition>` of the input topic: one never applied yet holds the
        agent-state horizon back entirely (`horizon.py`)."""
        self.store = store
        self.dead_letter = dead_letter
        self.thresholds = thresholds
        self.horizon_ms = state_horizon_ms
        self.agent_state_ms = agent_state_ms
        self.clock = clock
        self.loader = Loader(store, cache_bytes)
        self.offset_check = OffsetCheck(offset_ahead_policy)
        self._jobs = 0
        self.redis_errors = 0
        """Store errors since the last commit (retried by the caller; counted when Redis is back)."""
        self.oom_errors = 0
        """Commits Redis refused for want of memory (retried; counted once one goes through)."""
        self.conflicts = 0
        """Commit conflicts with another writer not yet counted in a commit."""
        self.decisions: dict[str, int] = {}
        """Preparations ahead kept (`ahead_kept`) or redone (`ahead_redone`) after the batch
        they were prepared on was redone, not yet in a batch: the next batch prepared takes
        them (`Prepared.taken`), and gives them back if it is not committed, so each reaches the
        pipeline counters exactly once however batches overlap (`pipelining.py`)."""
        self.after_reads: Callable[[], Awaitable[None]] | None = None
        """Awaited once a batch's reads are answered, before it is processed: the commit held
        until then may go out (`pipelining.Overlapped`)."""

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def handle(self, messages: list[RawMessage], gauges: dict[str, float] | None = None) -> None:
        """Process one batch until it is committed (retrying on conflicts)."""
        await self.run(self.check(messages, gauges))

    def check(self, messages: list[RawMessage], gauges: dict[str, float] | None = None,
              highwaters: dict[str, int] | None = None) -> Job:
        """Validate a batch (once, however often it is prepared)."""
        checked = [(m, validate(m.value, now_ms=self.now_ms(), max_age_ms=MAX_EVENT_AGE_MS))
                   for m in messages]
        self._jobs += 1
        return Job(checked, gauges or {}, highwaters=highwaters or {}, serial=self._jobs)

    async def run(self, job: Job) -> Prepared:
        """Prepare and commit on what the store holds, until the commit applies (however many
        conflicts it takes)."""
        attempt = 0
        while True:
            try:
                prepared = await self.prepare(job)
                await self.commit(prepared)
                return prepared
            except CommitConflict as exc:
                attempt += 1
                await self.back_off(exc, attempt)
                if attempt >= SPLIT_AFTER_CONFLICTS and len(job.checked) > 1:
                    return await self._run_halves(job)

    async def _run_halves(self, job: Job) -> Prepared:
        """A batch that keeps losing to other workers' commits is committed in two halves, one
        after the other: each is prepared in about half the time, so the window in which
        another worker's commit can intervene halves too (down to single messages if need be).
        The result does not depend on batching (tests/unit/test_processing.py)."""
        first, second = job.halves()
        log.info("batch of %d messages conflicted %d times: committing it in halves",
                 len(job.checked), SPLIT_AFTER_CONFLICTS)
        done = await self.run(first)
        last = await self.run(second)
        last.excluded = {**done.excluded, **last.excluded}
        last.split = True
        return last

    def decided(self, name: str) -> None:
        """Count a decision on a preparation ahead (`decisions`)."""
        self.decisions[name] = self.decisions.get(name, 0) + 1

    def give_back(self, prepared: Prepared) -> None:
        """`prepared` will not be committed: the decisions it carried go to the next batch."""
        for name, n in prepared.taken.items():
            self.decisions[name] = self.decisions.get(name, 0) + n
        prepared.taken = {}

    async def back_off(self, conflict: CommitConflict, attempt: int) -> None:
        """Count a conflict and wait a random while before the batch is prepared again."""
        self.conflicts += 1
        bound = min(CONFLICT_BACKOFF_MAX_S, CONFLICT_BACKOFF_S * 2 ** min(attempt, 16))
        (log.warning if attempt % 20 == 0 else log.info)(
            "commit conflict (attempt %d, retrying): %s", attempt, conflict)
        await asyncio.sleep(random.uniform(0, bound))

    async def commit(self, prepared: Prepared) -> None:
        """Apply a prepared batch, or raise CommitConflict if anything it read has changed, or
        CommitRejected if Redis refused it (nothing written; retrying cannot help)."""
        try:
            try:
                await self.store.commit(prepared.batch, prepared.now_ms)
            except BaseException:
                self.give_back(prepared)  # not committed (or not known to be): not counted
                raise
        except CommitConflict:
            # Nothing was written, and every held state is checked against Redis's version
            # before use (`Loader.load`): the states another worker changed are read again,
            # the rest stay held, so the retry prepares fast (a slow retry conflicts again).
            raise
        except (CommitRejected, ResponseError) as exc:
            self.loader.forget()
            if isinstance(exc, TRANSIENT_REPLIES):
                raise
            await self._refused(prepared, exc)
            if isinstance(exc, CommitRejected):
                raise
            raise CommitRejected(str(exc)) from exc
        except BaseException:
            self.loader.forget()
            raise
        self.loader.committed(prepared.after)
        counted = prepared.batch.pipeline
        self.redis_errors -= int(counted.get("redis_errors", 0))
        self.oom_errors -= int(counted.get("redis_oom_errors", 0))
        self.conflicts -= int(counted.get("commit_conflicts", 0))

    async def _refused(self, prepared: Prepared, exc: Exception) -> None:
        """A commit Redis refused: say what and where, and count it (best effort: the pipeline
        counters are in the same Redis)."""
        where = ", ".join(f"{tp} offsets {old + 1}..{new}" for tp, old, new in prepared.batch.offsets)
        log.error("Redis refused the batch (%s): %s. Nothing of it was written; retrying cannot "
                  "help, so the worker stops. See docs/operations.md#commit-errors",
                  where or "no new offsets", exc)
        try:
            await self.store.count_commit_error()
        except RedisError as err:
            log.warning("could not count the commit error: %s", err)

    async def prepare(self, job: Job, ahead: Prepared | None = None) -> Prepared:
        """Load the states the batch touches, process it and dead-letter its rejections.

        `ahead`: a batch whose commit is still on its way; this one is prepared on what the
        store will hold after it (its applied offsets and entity states), so that one batch's
        processing overlaps the other's commit (`pipelining.py`). Committing it is only valid
        once `ahead` has been committed as prepared. Once every read from the store is
        answered, `after_reads` is awaited (`ahead`'s commit may go out then)."""
        checked, dead_lettered, gauges = job.checked, job.dead_lettered, job.gauges
        view = ahead.after if ahead is not None else StoreView()
        names = [m.tp for m, _ in checked]  # once per message (a property builds a new string)
        tps = sorted(set(names))
        events = [r for _, r in checked if isinstance(r, Event)]
        call_keys = {cid: self.store.layout.call_key(cid) for cid in call_ids(events)}
        # One round trip for what the events name (their calls and agents) and the watermarks;
        # a second only for agents known through a loaded call alone.
        named = agent_parts.agent_keys(self.store.layout, {e.agent_id for e in events if e.agent_id})
        named_keys = [k for ks in named.values() for k in ks]
        (offsets, calls), (_, agents), stored_marks = await asyncio.gather(
            self.loader.load(view, tps, call_keys.values(), CallState.from_json),
            self.loader.load(view, (), named_keys, agent_parts.decode_part),
            self.store.watermarks())
        guard = dict(offsets)  # what the commit expects the store to hold
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for (m, _), tp in zip(checked, names, strict=True):
            offset = m.offset
            if tp not in first:
                first[tp] = last[tp] = offset
            elif offset < first[tp]:
                first[tp] = offset
            elif offset > last[tp]:
                last[tp] = offset
        reconciled = self.offset_check.check(job.serial, first, offsets, job.highwaters)
        offsets.update(reconciled.reset)
        if reconciled.excluded:
            kept = [i for i, tp in enumerate(names) if tp not in reconciled.excluded]
            checked, names = [checked[i] for i in kept], [names[i] for i in kept]
            last = {tp: n for tp, n in last.items() if tp not in reconciled.excluded}
        pending_at = [i for i, ((m, _), tp) in enumerate(zip(checked, names, strict=True))
                      if m.offset > offsets[tp]]
        pending = [checked[i] for i in pending_at]
        pending_tps = [names[i] for i in pending_at]
        if len(pending) < len(checked):
            log.info("skipped %d redelivered messages already applied (offsets %s)",
                     len(checked) - len(pending), offsets)
        versions = {key: v for key, (v, _) in calls.items()}
        loaded = Loaded(calls={cid: calls[k][1] for cid, k in call_keys.items()})
        fresh = [r for _, r in pending if isinstance(r, Event)]
        agent_keys = agent_parts.agent_keys(self.store.layout, agents_needed(fresh, loaded.calls))
        unnamed = [k for a, ks in agent_keys.items() if a not in named for k in ks]
        if unnamed:
            agents.update((await self.loader.load(view, (), unnamed, agent_parts.decode_part))[1])
        agents = {k: agents[k] for ks in agent_keys.values() for k in ks}
        versions.update({key: v for key, (v, _) in agents.items()})
        assembled = await agent_parts.assemble(self.store, agent_keys, agents, view.records)
        if self.after_reads is not None:
            await self.after_reads()
        loaded.agents = assembled.agents
        now = self.now_ms()
        marks = horizon.merged(stored_marks, view.watermarks,
                               [(tp, r) for (_, r), tp in zip(pending, pending_tps, strict=True)
                                if isinstance(r, Event)], gauges)
        outcome = process(fresh, loaded, self.thresholds, now_ms=now,
                          agent_state_ms=self.agent_state_ms,
                          watermark_ms=horizon.low_watermark(marks, self.source_partitions, now))
        rejected: Counter[str] = Counter()
        for m, r in pending:
            if isinstance(r, Rejection):
                rejected[r.reason] += 1
                if (m.tp, m.offset) not in dead_lettered:
                    delivery = await send_dead_letter(self.dead_letter, m, r, now)
                    dead_lettered.add((m.tp, m.offset))
                    if delivery is not Delivery.FULL:
                        job.dead_letter_degraded[f"dead_letter_{delivery.value}"] += 1
        agent_writes = agent_parts.agent_writes(outcome, agent_keys, versions, assembled.forced,
                                                int(self.horizon_ms), _dumps)
        batch = self._commit_batch(checked, pending, last, offsets, outcome, rejected, versions,
                                   call_keys, agent_writes, now,
                                   {**gauges, **reconciled.gauges}, guard)
        for name, n in (*reconciled.counters.items(), *job.dead_letter_degraded.items()):
            batch.pipeline[name] = batch.pipeline.get(name, 0) + n
        reported = set(pending_tps) | horizon.lags_tps(gauges)
        batch.watermarks = {tp: marks[tp] for tp in reported if tp in marks}
        written: dict[str, State] = {call_keys[cid]: st for cid, st in outcome.calls.items()}
        written.update(agent_writes.written)
        consulted = None
        if ahead is not None:  # every entry asked of the view, found or not (`StoreView.holds`)
            consulted = Consulted(tps, [*call_keys.values(), *named_keys, *unnamed],
                                  list(agent_keys))  # `assemble` consults records of these
        taken, self.decisions = self.decisions, {}
        for name, n in taken.items():
            batch.pipeline[name] = n
        try:
            encode_ahead(batch, self.store.layout, now)  # its commit then goes out at once (pipelining.py)
        except BaseException:
            self.decisions = taken
            raise
        return Prepared(batch, now, ahead, StoreView.after(batch, written), reconciled.excluded,
                        consulted, taken)

    def _commit_batch(self, checked: list[Checked], pending: list[Checked], last: dict[str, int],
                      offsets: dict[str, int], outcome: Outcome, rejected: Counter[str],
                      versions: dict[str, int], call_keys: dict[str, str],
                      agent_writes: agent_parts.AgentWrites, now: int,
                      gauges: dict[str, float], guard: dict[str, int]) -> CommitBatch:
        horizon = int(self.horizon_ms)
        entities = [EntityWrite(call_keys[cid], versions[call_keys[cid]], st.encode(), horizon)
                    for cid, st in outcome.calls.items()]
        entities += agent_writes.entities
        pipeline: defaultdict[str, float] = defaultdict(int)  # counts, and the latency sum
        pipeline["consumed"] = len(pending)
        pipeline["replayed"] = len(checked) - len(pending)
        for key in ("accepted", "duplicates", "late", "beyond_horizon"):
            pipeline[key] = outcome.stats[key]
        for reason, n in rejected.items():
            pipeline[f"rejected:{reason}"] = n
        for m, _ in pending:
            latency = max(0.0, (now - m.timestamp_ms) / 1000)
            pipeline[_latency_bucket(latency)] += 1
            pipeline["latency_sum"] += latency
            pipeline["latency_count"] += 1
        newest: dict[str, int] = {}  # (int: mypyc would store a `float` annotation's values as floats)
        for _, r in pending:
            if isinstance(r, Event) and r.campaign_id:
                key = f"newest_event:{r.campaign_id}"
                newest[key] = max(newest.get(key, 0), r.ts_ms)
        pipeline["batches"] = 1
        pipeline["redis_errors"] = self.redis_errors
        pipeline["redis_oom_errors"] = self.oom_errors
        pipeline["commit_conflicts"] = self.conflicts
        return CommitBatch(
            offsets=[(tp, guard[tp], last[tp]) for tp in sorted(last) if last[tp] > offsets[tp]],
            entities=entities,
            counters=outcome.deltas.grouped(),
            lead_sales=outcome.deltas.lead_sales(),
            team_moves=outcome.team_moves,
            live_calls=outcome.live_calls,
            live_agents=outcome.live_agents,
            pipeline=dict(pipeline),
            gauges={**gauges, **newest},
            notify=bool(pending),
            worker=self.worker_id,
            agent_records=agent_writes.records,
            agent_call_records=agent_writes.call_records,
            agent_teams=agent_writes.teams,
        )


_LATENCY_FIELDS = tuple((bound, f"latency_le:{bound}") for bound in LATENCY_BUCKETS)


def _latency_bucket(seconds: float) -> str:
    for bound, name in _LATENCY_FIELDS:
        if seconds <= bound:
            return name
    return "latency_le:+Inf"
