"""Prepare the next batch while the previous one's commit runs in Redis.

A batch's commit is one Lua script that Redis runs for about a third of the time the batch
takes to process, and the pipeline process would otherwise wait for it idle. Here the next
batch is prepared meanwhile, on the store as it will be once the previous commit has applied
(`Pipeline.prepare(ahead=...)`): its applied offsets, entity states, watermarks and agent
records come from that batch, the rest from Redis, which that commit does not change.

Redis runs one command at a time, so a read sent after a commit's script waits for the whole
script. When the next batch is already known (a backlog), its reads therefore go out first:
a batch's commit is held until the next batch's reads are answered (`release`), and the next
batch is processed while the commit runs. When no batch is waiting, the commit goes out at
once (`release` is called before waiting for one), and no commit is held longer than
`HOLD_MAX_S`. The reads are valid before the commit
because the view supplies everything that commit writes; another worker's commit in between
is caught by the version checks of the later commit, as any other.

That is speculation, and it is checked. Commits go out in order, one at a time. A batch
prepared ahead is committed as prepared if the batch it was prepared on was committed exactly
as prepared, or if that batch was never applied (its commit conflicted with another worker's,
or it was itself prepared on a batch redone) and was redone whole, without a Redis outage, on
a view that holds every entry this one consulted alike (`StoreView.holds`: the same version and
JSON of each call and agent key it asked for, found or not, the same offsets of its partitions,
records of its agents, and watermarks). It then is exactly what a preparation on the redone
batch would be (at its own clock, now older than the redone batch's: nothing depends on
commits' clocks being in order, which two workers' commits never are): what it read from Redis
besides is what the redone batch did not write, and another worker's writes are caught by the
version checks of its commit, as always. Otherwise
(an outage, when the batch may or may not have been applied, or a batch committed in halves)
it is prepared again on what Redis holds. Decisions are counted as `ahead_kept` and
`ahead_redone` in the pipeline counters. At most one batch is prepared ahead of a commit in
flight, so a view never needs more than the one batch before it, and a batch's reads go out
only once the commit before the one it is prepared on has returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream.processing.offsets import Exclusion
from stream.processing.pipeline import TRANSIENT_REPLIES, Job, Pipeline, Prepared
from stream.store.commit import CommitConflict
from stream.store.sending import notify_sent

log = logging.getLogger(__name__)
REDIS_RETRY_MAX_S = 10.0
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, *TRANSIENT_REPLIES)
"""What a Redis outage raises (also: out of memory under `noeviction`, a replica that is not yet
promoted); retried with backoff, everything else stops the worker."""


def count_outage(pipeline: Pipeline, exc: BaseException, doing: str, delay: float | None = None) -> None:
    """Count and log one failed round trip to Redis; the count reaches the pipeline counters
    with the next commit that goes through."""
    retry = f"retrying in {delay:.1f} s" if delay is not None else "retrying"
    if isinstance(exc, OutOfMemoryError):
        pipeline.oom_errors += 1
        log.error("Redis is out of memory (maxmemory reached; the worker waits, nothing is lost) "
                  "while %s; %s. Free memory or raise maxmemory: docs/operations.md#redis-settings",
                  doing, retry)
    else:
        pipeline.redis_errors += 1
        log.warning("Redis unavailable while %s (%s); %s", doing, exc, retry)

WRITE_WAIT_MAX_S = 1.0
"""The longest `release` waits for the released commit's script to be written whole (a few
milliseconds for megabytes on a local socket): past it, a Redis that does not read holds up
only that commit, not this process's work."""
HOLD_MAX_S = 0.1
"""The longest a commit waits for the next batch's reads. Releasing early is always correct
(those reads then only queue behind the script), so the bound keeps a caller that never
releases (nothing more to read) from stalling its last commit; the next batch's round trip
takes a few milliseconds."""


class Hold:
    """A queued commit held back until the next batch's reads are answered."""

    def __init__(self, previous: asyncio.Task[Prepared] | None) -> None:
        self.previous = previous
        """The commit before it: until that one is done, this one cannot go out anyway."""
        self.released = asyncio.Event()
        self.sent = False
        self.written = asyncio.Event()
        """Its script is written whole to Redis's socket (`store.sending`), or it will not be
        sent as prepared: Redis can run it while this process works on."""


Reply = Callable[[int, "str | None", "dict[str, Exclusion]"], None]
"""Reports a batch (by sequence number) committed (None) or failed (why: the worker stops), and
the partitions left out of it (not to be acked: `offsets.py`)."""


async def run_until_committed(pipeline: Pipeline, job: Job) -> Prepared:
    """Prepare and commit on what Redis holds, through Redis outages (with backoff); the outage
    is counted once Redis is back, as `redis_errors` in the pipeline counters."""
    return (await _run_until_committed(pipeline, job))[0]


async def _run_until_committed(pipeline: Pipeline, job: Job) -> tuple[Prepared, bool]:
    """`run_until_committed`, and whether it went without an outage (after one, an earlier
    attempt may have been applied)."""
    delay, clean = 0.1, True
    while True:
        try:
            return await pipeline.run(job), clean
        except REDIS_ERRORS as exc:
            clean = False
            count_outage(pipeline, exc, "committing", delay)
            await asyncio.sleep(delay)
            delay = min(REDIS_RETRY_MAX_S, delay * 2)


FAULT_COUNTERS = ("redis_errors", "redis_oom_errors", "commit_conflicts")
"""The pending counts a batch carries as they were when it was prepared (`Pipeline`): a batch
prepared ahead that carries any was prepared before the redone batch, which carried them too."""


def holds(prepared: Prepared, ahead: Prepared, committed: Prepared | None,
          redo_of: Prepared | None) -> bool:
    """Whether `prepared`, prepared on `ahead`, may be committed as prepared after `committed`,
    what was committed instead of `ahead`, redone from `redo_of` (see the module's docstring)."""
    if committed is None or redo_of is not ahead or committed.split:
        return False
    if prepared.consulted is None or any(prepared.batch.pipeline.get(name, 0)
                                         for name in FAULT_COUNTERS):
        return False
    return ahead.after.holds(committed.after, prepared.consulted)


class Overlapped:
    """Commits batches in arrival order, preparing each while the one before it commits."""

    def __init__(self, pipeline: Pipeline, reply: Reply) -> None:
        self.pipeline = pipeline
        pipeline.after_reads = self.release
        self.reply = reply
        self._last: tuple[asyncio.Task[Prepared], Prepared | None] | None = None
        """The newest batch's commit, and what it was prepared as."""
        self._before_last: asyncio.Task[Prepared] | None = None
        self._held: Hold | None = None
        """The newest batch's commit, held until the next batch's reads are answered."""

    async def submit(self, seq: int, job: Job) -> None:
        """Prepare `job` (ahead of the commit in flight, if any) and queue its commit; returns
        once it is queued. `reply(seq, None)` follows when it is committed. The commit is
        held until the next batch's reads are answered or `release` is called."""
        if self._before_last is not None:
            await asyncio.wait([self._before_last])  # one commit in flight while preparing
        previous, ahead = None, None
        if self._last is not None:
            previous, previous_prepared = self._last
            if not previous.done():
                ahead = previous_prepared
        try:
            prepared = await self._prepare(job, ahead)
        finally:
            await self.release()
        hold = Hold(previous)
        task = asyncio.create_task(self._settle(seq, job, prepared, previous, hold))
        self._before_last, self._last, self._held = previous, (task, prepared), hold

    async def release(self) -> None:
        """Let the held commit go out (no read of the next batch is to precede it), and
        return once it is written whole to Redis's socket (`store.sending`), so that it runs in
        Redis while this process works on. A batch
        redone after a conflict releases too: the held commit still waits for that batch's."""
        hold, self._held = self._held, None
        if hold is None:
            return
        hold.released.set()
        for _ in range(100):  # the commit's task runs until it waits for Redis's reply
            if hold.sent or (hold.previous is not None and not hold.previous.done()):
                break
            await asyncio.sleep(0)
        if hold.sent:  # and until the script is written whole: what asyncio still buffers is
            try:       # written only while the event loop runs, which processing holds up
                await asyncio.wait_for(hold.written.wait(), WRITE_WAIT_MAX_S)
            except TimeoutError:
                pass

    async def drain(self) -> None:
        """Wait until every queued batch is committed."""
        await self.release()
        if self._last is not None:
            await asyncio.wait([self._last[0]])

    async def _prepare(self, job: Job, ahead: Prepared | None) -> Prepared | None:
        """Prepared on `ahead`, or None when Redis is away (then it is redone once the commit
        before it has settled). The held commit goes out once the batch's reads are answered."""
        try:
            return await self.pipeline.prepare(job, ahead)
        except REDIS_ERRORS as exc:
            count_outage(self.pipeline, exc, "preparing")
            return None

    async def _settle(self, seq: int, job: Job, prepared: Prepared | None,
                      previous: asyncio.Task[Prepared] | None, hold: Hold) -> Prepared:
        """Commit after `previous`, once released; redo the batch if its preparation no longer
        holds."""
        try:
            committed_before = await previous if previous is not None else None
            redo_of = committed_before.redo_of if committed_before is not None else None
            if committed_before is not None:
                committed_before.redo_of = None  # only this batch can be prepared on it
            try:  # until the next batch's reads are answered, for at most HOLD_MAX_S
                await asyncio.wait_for(hold.released.wait(), HOLD_MAX_S)
            except TimeoutError:
                pass
            hold.sent = True  # from here the task runs until its script is sent
            unapplied: Prepared | None = None  # a preparation of this batch never applied
            if prepared is not None:
                ahead, prepared.ahead = prepared.ahead, None  # else every batch keeps all before
                if ahead is not None and ahead is not committed_before:  # `ahead` was redone
                    kept = holds(prepared, ahead, committed_before, redo_of)
                    self.pipeline.decided("ahead_kept" if kept else "ahead_redone")
                    if not kept:
                        self.pipeline.give_back(prepared)
                        unapplied, prepared = prepared, None
            if prepared is not None:
                try:
                    try:
                        with notify_sent(hold.written.set):
                            await self.pipeline.commit(prepared)
                    finally:
                        hold.written.set()  # (refused or failed: `release` has nothing to wait for)
                except CommitConflict as exc:
                    await self.pipeline.back_off(exc, 1)
                    unapplied, prepared = prepared, None
                except REDIS_ERRORS as exc:
                    count_outage(self.pipeline, exc, "committing")
                    unapplied = prepared = None  # it may have been applied
            hold.written.set()  # (not sent as prepared, or redone: nothing to wait for)
            if prepared is None:
                prepared, clean = await _run_until_committed(self.pipeline, job)
                if clean and unapplied is not None:
                    prepared.redo_of = unapplied  # the next batch may hold on it (`holds`)
        except Exception as exc:
            log.exception("batch %d failed", seq)
            self.reply(seq, f"{type(exc).__name__}: {exc}", {})
            raise
        finally:
            hold.written.set()
        self.reply(seq, None, prepared.excluded)
        return prepared
