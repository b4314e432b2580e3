"""The Redis store: entity loads, the atomic commit, and window reads in one round trip each."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from redis.typing import EncodableT, FieldT

from stream.kpi.windows import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    Decomposition,
    Range,
    decompose,
    floor_to,
    local_date,
    local_day_of,
    local_start,
)
from stream.store.commit import COMMIT_LUA, CommitBatch, CommitConflict, CommitRejected, commit_args
from stream.store.layout import BOUNDED_KINDS, SCOPE_KINDS, UTC, Layout, PartitionProgress, scope_cutoff
from stream.store.sending import flushing

Json = dict[str, Any]


class StoreLoad(NamedTuple):
    """What `Store.load` read in its one round trip."""

    offsets: dict[str, int]
    """tp → applied offset (-1 when none)"""
    states: dict[str, tuple[int, Json | None]]
    """entity key → (version, state)"""
    versions: dict[str, int]
    """entity key → version, for the keys whose state the caller holds already"""


class LiveState(NamedTuple):
    """The `live:*` hashes: every logged-in agent's and every unfinished call's current state."""

    agents: dict[str, Json]
    calls: dict[str, Json]


class LiveKept:
    """`Store.live`'s entries of the previous read: field -> (stored JSON, parsed)."""

    def __init__(self) -> None:
        self.agents: dict[Any, tuple[Any, Json]] = {}
        self.calls: dict[Any, tuple[Any, Json]] = {}


def _parsed(raw: dict[Any, Any], kept: dict[Any, tuple[Any, Json]]) -> dict[Any, Json]:
    """Each entry parsed, or the same parsed object as last time when its JSON is the same;
    `kept` then holds this read's entries only."""
    out, now = {}, {}
    for k, v in raw.items():
        found = kept.get(k)
        if found is None or found[0] != v:
            found = (v, orjson.loads(v))
        now[k] = found
        out[k] = found[1]
    kept.clear()
    kept.update(now)
    return out


class PipelineHealth(NamedTuple):
    counters: dict[str, float]
    gauges: dict[str, float]
    heartbeats: dict[str, int]
    """worker → its last heartbeat (epoch ms)"""
LOAD_LUA = """
-- KEYS: the offsets hash, then ARGV[1] entity keys whose version alone is wanted (their states
-- are held already), then the entity keys read whole. ARGV[2..]: the partitions whose applied
-- offsets are wanted. Returns, flat: each partition's offset (nil: none), each version-only
-- key's version ('0': none), each other key's version and state (nil: none).
local r, n = {}, 0
for i = 2, #ARGV do
  n = n + 1
  r[n] = redis.call('HGET', KEYS[1], ARGV[i])
end
local last_check = tonumber(ARGV[1]) + 1
for i = 2, last_check do
  n = n + 1
  r[n] = redis.call('HGET', KEYS[i], 'v') or '0'
end
for i = last_check + 1, #KEYS do
  local vs = redis.call('HMGET', KEYS[i], 'v', 's')
  r[n + 1], r[n + 2] = vs[1], vs[2]
  n = n + 2
end
return r
"""
"""A batch's reads as one command, however many keys: one reply redis-py's C parser reads
whole, where a pipeline of one HMGET per key cost the pipeline process a command object and a
reply callback per key (8 % of its samples, py-spy, BENCHMARKS.md)."""
MIGRATE_SCOPES_LUA = """
-- KEYS: legacy set, sorted set, per kind. ARGV[1]: now (epoch ms).
local moved = 0
for i = 1, #KEYS, 2 do
  if redis.call('TYPE', KEYS[i]).ok == 'set' then
    local ids = redis.call('SMEMBERS', KEYS[i])
    for j = 1, #ids, 1000 do
      local args = {}
      for k = j, math.min(j + 999, #ids) do args[#args + 1] = ARGV[1]; args[#args + 1] = ids[k] end
      redis.call('ZADD', KEYS[i + 1], 'NX', unpack(args))
    end
    redis.call('DEL', KEYS[i])
    moved = moved + #ids
  end
end
return moved
"""
"""Stores written before scopes retired kept plain sets: their ids join the sorted sets as seen
now (nothing disappears on upgrade; everything retires after the retention if not seen again)."""
RETIRE_WATERMARKS_LUA = """
-- KEYS[1]: watermarks. ARGV[1]: cutoff. Atomic, so a commit's newer watermark is never deleted.
local flat, gone = redis.call('HGETALL', KEYS[1]), 0
for i = 1, #flat, 2 do
  -- a value is `<newest event ms>:<caught up 0/1>` (or a bare `<newest>`, written before the flag)
  local newest = tonumber(string.match(flat[i + 1], '^(%-?%d+)'))
  if newest and newest < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], flat[i]); gone = gone + 1 end
end
return gone
"""

WORKER_FORGET_MS = 3_600_000
"""A worker silent this long is forgotten (its `callcenter_pipeline_worker_up` series ends).
Worker ids default to `<host>:<pid>`, new at every restart: kept forever, every crashed worker's
id would report it down for good. An hour leaves CallkpiWorkerDown time to page someone."""

FORGET_WORKERS_LUA = """
-- KEYS[1]: workers. ARGV[1]: cutoff. Atomic, so a beat written meanwhile is never deleted.
local flat, gone = redis.call('HGETALL', KEYS[1]), 0
for i = 1, #flat, 2 do
  if tonumber(flat[i + 1]) < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], flat[i]); gone = gone + 1 end
end
return gone
"""


class Store:
    """All Redis access of the service. One instance per process; safe for concurrent readers."""

    def __init__(self, url: str, prefix: str = "ck:", tz: ZoneInfo | None = None, *,
                 max_connections: int | None = None, wait_seconds: float = 5.0) -> None:
        """`tz`: the center's zone, whose local days the day buckets hold (writers and readers
        of one store must agree on it: `docs/history.md`). `max_connections`: a bounded pool
        (readers under load): a request waits up to `wait_seconds` for a free connection rather
        than failing, or opening one per request."""
        if max_connections is None:
            self.redis: aioredis.Redis = aioredis.from_url(url, decode_responses=True)
        else:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, decode_responses=True, max_connections=max_connections, timeout=wait_seconds)
            self.redis = aioredis.Redis(connection_pool=pool)
        pool_ = self.redis.connection_pool  # commands leave no part in asyncio's buffer (sending.py)
        pool_.connection_class = flushing(pool_.connection_class)
        self.layout = Layout(prefix, tz or UTC)
        self._commit = self.redis.register_script(COMMIT_LUA)
        self._load = self.redis.register_script(LOAD_LUA)
        self._scopes_migrated = False

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # -- the worker's side --------------------------------------------------------------------

    async def load(self, tps: Iterable[str], keys: Iterable[str], check: Iterable[str] = ()
                   ) -> StoreLoad:
        """In one round trip: applied offsets of `tps` (-1 when none), (version, state) of
        entity `keys`, and only the version of entity keys in `check` (states held already)."""
        tps, keys, check = list(tps), list(keys), list(check)
        if not (tps or keys or check):
            return StoreLoad({}, {}, {})
        reply = await self._load(keys=[self.layout.key("offsets"), *check, *keys],
                                 args=[len(check), *tps])
        n_tps, n_check = len(tps), len(check)
        offsets = {tp: int(v) if v is not None else -1 for tp, v in zip(tps, reply, strict=False)}
        versions = {key: int(v) for key, v in zip(check, reply[n_tps:], strict=False)}
        at = n_tps + n_check
        states = {key: (int(v) if v else 0, json.loads(s) if s else None)
                  for key, v, s in zip(keys, reply[at::2], reply[at + 1::2], strict=True)}
        return StoreLoad(offsets, states, versions)

    async def applied_offsets(self, tps: Iterable[str]) -> dict[str, int]:
        """The last applied offset of each `topic:partition` (-1: none)."""
        tps = list(tps)
        raw = await self.redis.hmget(self.layout.key("offsets"), tps) if tps else []
        return {tp: int(v) if v is not None else -1 for tp, v in zip(tps, raw, strict=True)}

    async def memory(self) -> dict[str, Any]:
        """Redis's `INFO memory`: used_memory, maxmemory, maxmemory_policy, ..."""
        return dict(await self.redis.info("memory"))

    async def watermarks(self) -> dict[str, PartitionProgress]:
        """Per source partition, how far it is applied (see `processing/horizon.py`)."""
        # decode_responses=True: replies are str (redis-py's types cannot say so)
        raw = cast(dict[str, str], await self.redis.hgetall(self.layout.key("watermarks")))
        return {k: PartitionProgress.decode(v) for k, v in raw.items()}

    async def agent_record_parts(self, agents: Iterable[str]
                                 ) -> dict[str, tuple[Json | None, Json | None]]:
        """The two shares of these agents' records (`agents`, `agent_calls` hashes), for those
        with a part of their state gone; agents with neither are left out."""
        agents = list(agents)
        if not agents:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.layout.key("agents"), agents)
        pipe.hmget(self.layout.key("agent_calls"), agents)
        states, calls = await pipe.execute()
        return {a: (json.loads(s) if s else None, json.loads(c) if c else None)
                for a, s, c in zip(agents, states, calls, strict=True) if s or c}

    async def commit(self, batch: CommitBatch, now_ms: int) -> None:
        """Apply the batch atomically, or raise CommitConflict if anything it read changed."""
        try:
            result = await self._commit(args=commit_args(batch, self.layout, now_ms))
        except ResponseError as exc:
            raise _as_transient(exc) from exc
        if result[0] == "conflict":
            raise CommitConflict(f"{result[1]} changed: {result[2]}")
        if result[0] != "ok":
            what, key, field_ = (list(result[1:]) + ["", "", ""])[:3]
            raise CommitRejected(f"{what} (key {key!r}" + (f", field {field_!r})" if field_ else ")"))

    async def count_commit_error(self) -> None:
        """One more commit that Redis refused (`callcenter_pipeline_commit_errors_total`)."""
        await self.redis.hincrbyfloat(self.layout.key("pipeline"), "commit_errors", 1)

    async def heartbeat(self, worker: str, now_ms: int, gauges: dict[str, float] | None = None) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.layout.key("workers"), worker, now_ms)
        if gauges:
            # (redis-py's mapping type is invariant in the key: a dict[str, float] is not one)
            pipe.hset(self.layout.key("gauges"), mapping=cast(Mapping[FieldT, EncodableT], gauges))
        pipe.eval(FORGET_WORKERS_LUA, 1, self.layout.key("workers"), now_ms - WORKER_FORGET_MS)
        await pipe.execute()

    async def forget_worker(self, worker: str) -> None:
        """A worker that stops cleanly is gone, not down: its heartbeat goes with it."""
        await self.redis.hdel(self.layout.key("workers"), worker)

    async def retire_idle_watermarks(self, now_ms: int) -> int:
        """Drop the watermarks of partitions whose newest event is older than the retention (a
        partition deleted, or idle that long): they hold nothing back (a partition 24 h behind
        counts as idle for the agent-state horizon) but would stay forever. Returns how many."""
        return int(await self.redis.eval(RETIRE_WATERMARKS_LUA, 1, self.layout.key("watermarks"),
                                         scope_cutoff(now_ms)))

    async def prune_live_calls(self, older_than_ms: int) -> int:
        """Drop live calls that never finished (they stop counting as ringing/waiting/talking)."""
        key = self.layout.key("live:calls")
        stale = [cid for cid, v in (await self.redis.hgetall(key)).items()
                 if json.loads(v)["since"] < older_than_ms]
        if stale:
            await self.redis.hdel(key, *stale)
        return len(stale)

    # -- readers ------------------------------------------------------------------------------

    async def window_counters(self, scopes: list[str], r: Range) -> dict[str, dict[str, float]]:
        """Counter sums of each scope over `[r.start, r.end)`: one round trip for all scopes.

        `today` (a local midnight to a point of that day) of a scope whose newest minute with
        data (`Layout.bound_of`, only raised) is before the end: its day hash holds exactly the
        window, one small hash instead of the day's hours and the current hour's minutes (the
        center's /kpis today: ~4,000 minute fields parsed at 5,000 agents). The rest from the
        buckets (`stream/readers/sums.py` reads scopes in bulk the same way)."""
        tz = self.layout.tz
        day = local_day_of(r.start, tz) if tz is not None and scopes else None
        if day is None or local_start(local_date(r.start, tz), tz) != r.start or local_day_of(r.end - 1, tz) != day:
            return await self._bucket_counters(scopes, r)
        before = floor_to(r.end - 1, MINUTE_MS) + MINUTE_MS
        pipe = self.redis.pipeline(transaction=False)
        for scope in scopes:
            key, member = self.layout.bound_of(scope)
            pipe.zscore(key, member)
            pipe.hgetall(self.layout.day_key(scope, day.date))
        replies = await pipe.execute()
        out: dict[str, dict[str, float]] = {}
        prefix = f"{day.day}:"
        n = len(prefix)
        for i, scope in enumerate(scopes):
            newest, fields = replies[2 * i], replies[2 * i + 1]
            if newest is not None and newest < before and scope.partition(":")[0] in BOUNDED_KINDS:
                out[scope] = {f[n:]: float(v) for f, v in fields.items() if f.startswith(prefix)}
        rest = [s for s in scopes if s not in out]
        if rest:
            out.update(await self._bucket_counters(rest, r))
        return {s: out[s] for s in scopes}

    async def _bucket_counters(self, scopes: list[str], r: Range) -> dict[str, dict[str, float]]:
        """`window_counters` from the buckets `decompose` names."""
        buckets = self.bucket_fields(decompose(r, self.layout.tz))
        plan: list[tuple[str, set[str]]] = []
        pipe = self.redis.pipeline(transaction=False)
        for scope in scopes:
            for key_of, idx in buckets:
                pipe.hgetall(key_of(scope))
                plan.append((scope, idx))
        results = await pipe.execute() if plan else []
        out: dict[str, dict[str, float]] = {s: defaultdict(float) for s in scopes}
        for (scope, idx), fields in zip(plan, results, strict=True):
            sums = out[scope]
            for f, v in fields.items():
                i, _, name = f.partition(":")
                if i in idx:
                    sums[name] += float(v)
        return {s: dict(v) for s, v in out.items()}

    def bucket_fields(self, d: Decomposition) -> list[tuple[Any, set[str]]]:
        """(scope → bucket hash key, the field indexes to read in it) for a decomposition."""
        minute_idx: defaultdict[int, set[str]] = defaultdict(set)
        for m in d.minutes:
            minute_idx[floor_to(m, HOUR_MS)].add(str((m % HOUR_MS) // MINUTE_MS))
        hour_idx: defaultdict[int, set[str]] = defaultdict(set)
        for h in d.hours:
            hour_idx[floor_to(h, DAY_MS)].add(str((h % DAY_MS) // HOUR_MS))
        day_idx: defaultdict[str, set[str]] = defaultdict(set)
        for start in d.days:
            day = local_day_of(start, self.layout.tz)
            day_idx[day.date].add(str(day.day))
        lay = self.layout
        out: list[tuple[Any, set[str]]] = []
        out += [((lambda s, b=b: lay.minute_key(s, b)), i) for b, i in minute_idx.items()]
        out += [((lambda s, b=b: lay.hour_key(s, b)), i) for b, i in hour_idx.items()]
        out += [((lambda s, b=b: lay.day_key(s, b)), i) for b, i in day_idx.items()]
        return out

    async def month_ids(self, kind: str, months: list[str]) -> list[str]:
        """The ids of `kind` with data in any of the local months (the month index)."""
        if not months:
            return []
        keys = [self.layout.month_index_key(kind, m) for m in months]
        return sorted(str(i) for i in await self.redis.sunion(keys))

    async def totals(self, scopes: list[str]) -> dict[str, dict[str, float]]:
        pipe = self.redis.pipeline(transaction=False)
        for s in scopes:
            pipe.hgetall(self.layout.total_key(s))
        results = await pipe.execute() if scopes else []
        return {s: {k: float(v) for k, v in r.items()} for s, r in zip(scopes, results, strict=True)}

    async def scopes(self, now_ms: int | None = None) -> dict[str, list[str]]:
        """The ids of every scope kind with data inside the retention at `now_ms` (None: every
        id still indexed; the commit retires the rest by the worker's clock)."""
        await self._migrate_scopes()
        low = "-inf" if now_ms is None else scope_cutoff(now_ms)
        pipe = self.redis.pipeline(transaction=False)
        for kind in SCOPE_KINDS:
            pipe.zrangebyscore(self.layout.scopes_key(kind), low, "+inf")
        results = await pipe.execute()
        return {kind: sorted(r) for kind, r in zip(SCOPE_KINDS, results, strict=True)}

    async def recent_scopes(self, kind: str, limit: int, now_ms: int) -> tuple[list[str], int]:
        """The `limit` ids of `kind` seen most recently (inside the retention), and how many ids
        of that kind are inside the retention in all."""
        await self._migrate_scopes()
        key, low = self.layout.scopes_key(kind), scope_cutoff(now_ms)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrevrangebyscore(key, "+inf", low, start=0, num=limit)
        pipe.zcount(key, low, "+inf")
        recent, count = await pipe.execute()
        return list(recent), int(count)

    async def _migrate_scopes(self) -> None:
        """Once per process: carry legacy scope sets over (`MIGRATE_SCOPES_LUA`)."""
        if self._scopes_migrated:
            return
        keys = [k for kind in SCOPE_KINDS
                for k in (self.layout.legacy_scopes_key(kind), self.layout.scopes_key(kind))]
        await self.redis.eval(MIGRATE_SCOPES_LUA, len(keys), *keys, int(time.time() * 1000))
        self._scopes_migrated = True

    async def live(self, kept: LiveKept | None = None) -> LiveState:
        """The current state of every logged-in agent and unfinished call.

        `kept` (serve's, `readers.api.create_web_app`): the previous read's raw and parsed
        entries; an entry whose stored JSON did not change is handed out as the same parsed
        object (callers only read them), so a read after a commit parses only the agents and
        calls that changed, and readers can keep what they derive per object (`query.live_rows`)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.layout.key("live:agents"))
        pipe.hgetall(self.layout.key("live:calls"))
        agents, calls = await pipe.execute()
        # orjson: the same values as json, parsed ~4x faster (5,000 agents and their calls per
        # store generation, on the readers' event loop)
        if kept is None:
            return LiveState({k: orjson.loads(v) for k, v in agents.items()},
                             {k: orjson.loads(v) for k, v in calls.items()})
        return LiveState(_parsed(agents, kept.agents), _parsed(calls, kept.calls))

    async def pipeline_health(self) -> PipelineHealth:
        """The gauges include Redis's own memory (`redis:used_memory`, `redis:maxmemory`,
        `redis:noeviction`): a Redis at its limit refuses the workers' writes, so only a reader
        can report it."""
        pipe = self.redis.pipeline(transaction=False)
        for name in ("pipeline", "gauges", "workers"):
            pipe.hgetall(self.layout.key(name))
        pipe.info("memory")
        p, g, w, mem = await pipe.execute()
        gauges = {k: float(v) for k, v in g.items()}
        gauges["redis:used_memory"] = float(mem.get("used_memory", 0))
        gauges["redis:maxmemory"] = float(mem.get("maxmemory", 0))
        gauges["redis:noeviction"] = float(mem.get("maxmemory_policy") == "noeviction")
        return PipelineHealth({k: float(v) for k, v in p.items()}, gauges, {k: int(v) for k, v in w.items()})


COMPACT_HASH_SETTINGS = ("hash-max-listpack-entries", "hash-max-ziplist-entries")
"""Redis 7's name of the setting, and its older name (Redis 6.2 and before; 7 keeps it as an alias)."""
DAY_HASH_FIELDS = 64
"""A local-day hash holds one field per counter of the day: 38-51 in a simulated center, up to
55 plus one per disposition code and pause reason seen that day. Compact hashes of at least this
many fields keep 400 days of history small (a hash table costs about four times as much)."""
HOUR_HASH_COMPACT_MAX = 128
"""Redis 7's default, and what `callkpi stack` and docker-compose.yml set: an hour hash (up to
24 hours × the counters) above it is a hash table, so a commit does not search it field by
field. Redis 6.2's default is 512."""


def hash_setting_advice(config: Mapping[str, str]) -> str | None:
    """What the server's compact-hash setting (`CONFIG GET hash-max-*`) costs the store, or
    None when it suits it. Minute hashes become hash tables at `commit.PROMOTE_AT` fields
    whatever the setting; day and hour hashes follow it."""
    value = next((config[name] for name in COMPACT_HASH_SETTINGS if name in config), None)
    if value is None or not value.isdigit():
        return None
    entries = int(value)
    if entries < DAY_HASH_FIELDS:
        return (f"Redis's hash-max-listpack-entries is {entries}: local-day hashes (40-70 fields, "
                "kept 400 days) become hash tables, about four times the history's memory. Set it "
                f"to {HOUR_HASH_COMPACT_MAX} (docs/operations.md#redis-settings)")
    if entries > HOUR_HASH_COMPACT_MAX:
        return (f"Redis's hash-max-listpack-entries is {entries}: hour hashes of up to {entries} "
                "fields stay compact lists that every commit searches field by field, which costs "
                f"Redis CPU per event. Set it to {HOUR_HASH_COMPACT_MAX} "
                "(docs/operations.md#redis-settings)")
    return None


def _as_transient(exc: ResponseError) -> ResponseError:
    """An error raised inside a script comes back wrapped ("Error running script ...: -OOM
    command not allowed ..."): give out-of-memory and read-only replies their own types, so
    that they are retried like an outage instead of stopping the worker."""
    text = str(exc)
    if isinstance(exc, (OutOfMemoryError, ReadOnlyError)):
        return exc
    if "OOM command not allowed" in text:
        return OutOfMemoryError(text)
    if "READONLY" in text:
        return ReadOnlyError(text)
    return exc


__all__ = ["Store", "CommitBatch", "CommitConflict", "CommitRejected", "hash_setting_advice"]
