"""The worker's batch step: validate, skip what is applied, load, process, dead-letter, commit.

Independent of Faust so that it can be driven by any consumer (and tested directly); the Faust
agent in `app.py` only feeds it batches and acks them after `handle` returns.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stream.contract import Event, Rejection, format_ts, validate
from stream.kpi.contributions import Thresholds
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.processing.agent_state import AgentState
from stream.processing.batch import Loaded, Outcome, agents_needed, call_ids, process
from stream.processing.call_state import CallState
from stream.store.commit import LATENCY_BUCKETS, CommitBatch, CommitConflict, EntityWrite
from stream.store.redis_store import Store

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    value: bytes
    timestamp_ms: int  # the Kafka record's timestamp (publish time): only for latency

    @property
    def tp(self) -> str:
        return f"{self.topic}:{self.partition}"


DeadLetter = Callable[[bytes, bytes], Awaitable[None]]
"""Sends (key, value) to the dead-letter topic and waits for the broker's ack."""


def dead_letter_record(msg: RawMessage, rejection: Rejection, now_ms: int) -> bytes:
    """The DLQ value: the original bytes, the reason, and when and where it was rejected."""
    return json.dumps({
        "reason": rejection.reason,
        "message": rejection.message,
        "event_id": rejection.event_id,
        "rejected_at": format_ts(now_ms),
        "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
        "original": msg.value.decode("utf-8", errors="replace"),
        "original_b64": base64.b64encode(msg.value).decode(),
    }).encode()


class Pipeline:
    def __init__(self, store: Store, dead_letter: DeadLetter, thresholds: Thresholds,
                 *, state_horizon_ms: int, agent_state_ms: int = 6 * 3_600_000,
                 worker_id: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.worker_id = worker_id
        self.store = store
        self.dead_letter = dead_letter
        self.thresholds = thresholds
        self.horizon_ms = state_horizon_ms
        self.agent_state_ms = agent_state_ms
        self.clock = clock
        self.redis_errors = 0
        """Store errors since the last commit (retried by the caller; counted when Redis is back)."""

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def handle(self, messages: list[RawMessage], gauges: dict[str, float] | None = None) -> None:
        """Process one batch until it is committed (retrying on conflicts)."""
        checked = [(m, validate(m.value, now_ms=self.now_ms(), max_age_ms=MAX_EVENT_AGE_MS))
                   for m in messages]
        dead_lettered: set[tuple[str, int]] = set()
        for attempt in range(MAX_ATTEMPTS):
            try:
                await self._attempt(checked, dead_lettered, gauges or {})
                return
            except CommitConflict as exc:
                log.info("commit conflict (attempt %d): %s", attempt + 1, exc)
        raise RuntimeError(f"batch could not be committed after {MAX_ATTEMPTS} conflicts")

    async def _attempt(self, checked: list[tuple[RawMessage, Event | Rejection]],
                       dead_lettered: set[tuple[str, int]], gauges: dict[str, float]) -> None:
        tps = sorted({m.tp for m, _ in checked})
        events = [r for _, r in checked if isinstance(r, Event)]
        call_keys = {cid: self.store.layout.call_key(cid) for cid in call_ids(events)}
        offsets, raw_calls = await self.store.load(tps, call_keys.values())
        pending = [(m, r) for m, r in checked if m.offset > offsets[m.tp]]
        if len(pending) < len(checked):
            log.info("skipped %d redelivered messages already applied (offsets %s)",
                     len(checked) - len(pending), offsets)
        versions = {key: v for key, (v, _) in raw_calls.items()}
        loaded = Loaded(calls={cid: CallState.from_json(raw_calls[k][1]) if raw_calls[k][1] else None
                               for cid, k in call_keys.items()})
        fresh = [r for _, r in pending if isinstance(r, Event)]
        agent_keys = {a: self.store.layout.agent_key(a) for a in agents_needed(fresh, loaded.calls)}
        _, raw_agents = await self.store.load((), agent_keys.values())
        versions.update({key: v for key, (v, _) in raw_agents.items()})
        loaded.agents = {a: AgentState.from_json(raw_agents[k][1]) if raw_agents[k][1] else None
                         for a, k in agent_keys.items()}
        now = self.now_ms()
        marks = await self.store.watermarks()
        for m, r in pending:
            if isinstance(r, Event):
                marks[m.tp] = max(marks.get(m.tp, r.ts_ms), r.ts_ms)
        outcome = process(fresh, loaded, self.thresholds, now_ms=now,
                          agent_state_ms=self.agent_state_ms, watermark_ms=low_watermark(marks))
        rejected: Counter[str] = Counter()
        for m, r in pending:
            if isinstance(r, Rejection):
                rejected[r.reason] += 1
                if (m.tp, m.offset) not in dead_lettered:
                    await self.dead_letter(m.tp.encode(), dead_letter_record(m, r, now))
                    dead_lettered.add((m.tp, m.offset))
        batch = self._commit_batch(checked, pending, offsets, outcome, rejected, versions,
                                   call_keys, agent_keys, now, gauges)
        batch.watermarks = {tp: marks[tp] for tp in {m.tp for m, _ in pending} if tp in marks}
        await self.store.commit(batch, now)
        self.redis_errors = 0

    def _commit_batch(self, checked, pending, offsets, outcome: Outcome, rejected: Counter[str],
                      versions: dict[str, int], call_keys: dict[str, str],
                      agent_keys: dict[str, str], now: int,
                      gauges: dict[str, float]) -> CommitBatch:
        horizon = int(self.horizon_ms)
        entities = [EntityWrite(call_keys[cid], versions[call_keys[cid]], st.to_json(), horizon)
                    for cid, st in outcome.calls.items()]
        entities += [EntityWrite(agent_keys[a], versions[agent_keys[a]], st.to_json(), horizon)
                     for a, st in outcome.agents.items()]
        last: dict[str, int] = {}
        for m, _ in checked:
            last[m.tp] = max(last.get(m.tp, -1), m.offset)
        pipeline: Counter[str] = Counter()
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
        newest: dict[str, float] = {}
        for _, r in pending:
            if isinstance(r, Event) and r.campaign_id:
                key = f"newest_event:{r.campaign_id}"
                newest[key] = max(newest.get(key, 0), r.ts_ms)
        pipeline["batches"] = 1
        pipeline["redis_errors"] = self.redis_errors
        return CommitBatch(
            offsets=[(tp, offsets[tp], last[tp]) for tp in sorted(last) if last[tp] > offsets[tp]],
            entities=entities,
            counters=outcome.deltas.grouped(),
            team_moves=outcome.team_moves,
            live_calls=outcome.live_calls,
            live_agents=outcome.live_agents,
            pipeline=dict(pipeline),
            gauges={**gauges, **newest},
            notify=bool(pending),
            worker=self.worker_id,
        )


WATERMARK_SKEW_MAX_MS = 24 * 3_600_000
"""A partition this far behind the most advanced one is taken as idle, not as slow: it stops
holding back the agent-state horizon (which would otherwise grow without bound)."""


def low_watermark(marks: dict[str, int]) -> int | None:
    """The event time every (live) partition has reached: agent history after it is kept, so
    that unevenly consumed partitions (a backlog replayed at full speed) stay exact."""
    if not marks:
        return None
    top = max(marks.values())
    return min(t for t in marks.values() if t >= top - WATERMARK_SKEW_MAX_MS)


def _latency_bucket(seconds: float) -> str:
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return f"latency_le:{bound}"
    return "latency_le:+Inf"
