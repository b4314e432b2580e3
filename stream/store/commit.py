"""Turning a processed batch into one atomic, offset-guarded Redis commit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, NamedTuple

import orjson

from stream.kpi.catalog import FLOAT_COUNTERS
from stream.kpi.retention import keep_until_ms
from stream.kpi.windows import DAY_MS, HOUR_MS, MINUTE_MS, LocalDay, floor_to, local_day_of
from stream.state.batch import TeamMove
from stream.state.call_state import LiveCall
from stream.store.layout import (
    SCOPE_KINDS,
    Layout,
    PartitionProgress,
    day_key_expiry,
    history_buckets,
    hour_key_expiry,
    minute_key_expiry,
    month_index_expiry,
    scope_cutoff,
)

COMMIT_LUA = resources.files("stream.store").joinpath("commit.lua").read_text()
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the event-to-store latency histogram."""


class CommitConflict(Exception):
    """Another writer changed an offset or entity the batch read: re-read and retry."""


class CommitRejected(Exception):
    """Redis refused the batch before writing anything (a counter would overflow, a key holds
    the wrong type, ...): retrying cannot help, so the worker stops (docs/operations.md)."""


Amount = int | float
"""A counter's value: an int, or a float for float counters. Not `float`: compiled with mypyc
(the native build), a value read through a `float` annotation becomes a float, and integer
counters would go out as HINCRBYFLOAT "60.0" instead of HINCRBY "60"."""


@dataclass
class EntityWrite:
    key: str
    version: int
    """The version the batch read; the commit fails if the stored one differs."""
    json: str | None
    """The new state, encoded (None: delete it)."""
    ttl_ms: int
    sibling: str | None = None
    """A key that expires with this one (the other part of an agent's state), not rewritten."""
    team: str | None = None
    """An agent's states part: the agent's team ("" none), stored as its own small field `t`
    (`CommitBatch.agent_teams` compares it without decoding the JSON)."""


@dataclass
class CommitBatch:
    """Everything one batch changes; applied all-or-nothing by commit.lua."""

    offsets: list[tuple[str, int, int]] = field(default_factory=list)  # tp, expected, new
    entities: list[EntityWrite] = field(default_factory=list)
    counters: dict[tuple[str, int], dict[str, Amount]] = field(default_factory=dict)  # (scope, minute) → deltas
    team_moves: list[TeamMove] = field(default_factory=list)
    live_calls: dict[str, LiveCall | None] = field(default_factory=dict)
    live_agents: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    pipeline: dict[str, Amount] = field(default_factory=dict)
    gauges: dict[str, Amount] = field(default_factory=dict)
    notify: bool = True
    worker: str = ""  # heartbeat: the committing worker's id
    watermarks: dict[str, PartitionProgress] = field(default_factory=dict)  # per source tp
    agent_records: dict[str, str] = field(default_factory=dict)
    """agent id → its record (JSON) in the `agents` hash, which outlives the agent's state: the
    states part's share (`AgentState.states_record`)."""
    agent_call_records: dict[str, str] = field(default_factory=dict)
    """agent id → the calls part's share of its record, in the `agent_calls` hash."""
    agent_teams: dict[str, str] = field(default_factory=dict)
    """states key → the team ("" none) the batch counted the agent in without writing its
    state: the commit conflicts if the stored team (`t`) is another (a team move committed
    since the batch read it)."""
    lead_sales: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    """(scope, period, period id, lead_id) → change in that lead's sales (customer retention)."""
    encoded: tuple[int, list[str | bytes]] | None = field(default=None, repr=False, compare=False)
    """(now_ms, the script's arguments) once `encode_ahead` made them: the worker encodes a
    batch as the last step of preparing it, so that its commit goes out the moment it is
    released (`stream/processing/pipelining.py`) instead of Redis idling while it is encoded."""


def lead_sets(batch: CommitBatch, layout: Layout) -> list[list[Any]]:
    """{set key, expire at ms, [lead, delta, ...]} per retention set the batch changes: each a
    sorted set of leads scored by their sales in the period (a lead leaves it at 0)."""
    sets: dict[str, list[Any]] = {}
    for (scope, period, pid, lead), n in sorted(batch.lead_sales.items()):
        if not n:
            continue
        key = layout.retention_key(scope, period, pid)
        if key not in sets:
            sets[key] = [key, keep_until_ms(period, pid), []]  # type: ignore[arg-type]
        sets[key][2] += (lead, str(int(n)))
    return list(sets.values())


PROMOTE_AT = 32
"""A minute hash with this many fields is made a hash table by the commit (commit.lua): a small
hash is a listpack (a ziplist before Redis 7), which every HINCRBY searches field by field, and
a scope's minute hash grows to hundreds of fields within its hour. Redis converts it only past
`hash-max-listpack-entries` (128 in Redis 7, 512 in 6.2); the day and total hashes (about 50
fields, kept 400 days or for ever) stay compact whatever that setting (BENCHMARKS.md, "Where
Redis's CPU per event went")."""


class _Increments:
    """Every counter increment of a batch, summed per (hash, field): each field is then one
    command in Redis (an hour or total field gets one increment, not one per minute), and the
    script can check each against the stored value before its first write.

    Sums are kept per hash, per field index (minute, hour or day number; "" for totals), per
    counter name: a (scope, minute) group looks its index's dict up once per hash, and a
    field's name (`<index>:<counter>`) is built once per batch, not once per increment."""

    __slots__ = ("sums", "promote")

    def __init__(self) -> None:
        self.sums: dict[str, dict[str, dict[str, Amount]]] = {}
        self.promote: set[str] = set()

    def index(self, key: str, index: str) -> dict[str, Amount]:
        """The sums of one field index of a hash (created empty)."""
        of_key = self.sums.get(key)
        if of_key is None:
            of_key = self.sums[key] = {}
        of_index = of_key.get(index)
        if of_index is None:
            of_index = of_key[index] = {}
        return of_index

    def payload(self) -> tuple[list[list[Any]], list[int]]:
        """[[key, [field, int, ...], [field, float, ...]], ...]: integer sums (HINCRBY; a zero
        one is left out), then float ones (HINCRBYFLOAT: a float counter, or a non-integral
        sum); values as strings (Lua's own number formatting keeps only 14 digits). And the
        positions (1-based) of the hashes to promote (`PROMOTE_AT`)."""
        out: list[list[Any]] = []
        promoted: list[int] = []
        promote = self.promote
        floats = FLOAT_COUNTERS
        for key, of_key in self.sums.items():
            ints: list[str] = []
            fl: list[str] = []
            for index, sums in of_key.items():
                for name, v in sums.items():
                    if v.__class__ is int and name not in floats:
                        if v:
                            ints += (f"{index}:{name}" if index else name, str(v))
                    else:
                        fl += (f"{index}:{name}" if index else name, repr(float(v)))
            if ints or fl:
                out.append([key, ints, fl])
                if key in promote:
                    promoted.append(len(out))
        return out, promoted


class _Minute(NamedTuple):
    """What every scope's group of one minute shares: bucket suffixes, field indexes, expiries."""

    day: LocalDay
    date: str
    """The local date (`LocalDay.date`, a property: computed once here)."""
    day_expiry: int
    minute_index: str | None
    """None: the minute hash would expire at once (an import of old events): left out."""
    hour_ms: int
    minute_expiry: int
    hour_index: str | None
    day_ms: int
    hour_expiry: int


def _minute(minute: int, layout: Layout, now_ms: int) -> _Minute:
    day = local_day_of(minute, layout.tz)
    m_exp, h_exp = minute_key_expiry(minute), hour_key_expiry(minute)
    return _Minute(day, day.date, day_key_expiry(day.date, layout.tz),
                   str((minute % HOUR_MS) // MINUTE_MS) if m_exp > now_ms else None,
                   floor_to(minute, HOUR_MS), m_exp,
                   str((minute % DAY_MS) // HOUR_MS) if h_exp > now_ms else None,
                   floor_to(minute, DAY_MS), h_exp)


def _add(sums: dict[str, Amount], named: dict[str, Amount]) -> None:
    if not sums:
        sums.update(named)
        return
    get = sums.get
    for name, v in named.items():
        sums[name] = get(name, 0) + v


def encode_ahead(batch: CommitBatch, layout: Layout, now_ms: int) -> None:
    """Encode the finished batch now and keep the arguments with it (`CommitBatch.encoded`);
    nothing may change the batch after this."""
    batch.encoded = (now_ms, encode(batch, layout, now_ms))


def commit_args(batch: CommitBatch, layout: Layout, now_ms: int) -> list[str | bytes]:
    """The script's arguments: those encoded ahead for the same `now_ms`, else encoded now."""
    if batch.encoded is not None and batch.encoded[0] == now_ms:
        return batch.encoded[1]
    return encode(batch, layout, now_ms)


def encode(batch: CommitBatch, layout: Layout, now_ms: int) -> list[str | bytes]:
    """The arguments of commit.lua: a JSON description of the batch, then the entity states.

    Counter increments are summed per hash and field (`_Increments`): each delta goes to its
    minute, hour, day and total hash. A minute or hour hash that would expire at once (an import
    of old events) is left out: only the day hash, kept 400 days, takes the event. Entity states
    travel as arguments of their own, referred to by position: embedded in the JSON they would
    be escaped here and unescaped by Lua, and they are most of the bytes."""
    expire: dict[str, int] = {}
    scopes: dict[tuple[str, str], int] = {}  # (index key, id) → newest minute with data
    months: set[tuple[str, str]] = set()  # (month index key, id)
    increments = _Increments()
    index = increments.index
    newest: dict[str, list[Any]] = {}  # newest-minute key → [key, minute index, expiry, minute hash]
    minutes: dict[int, _Minute] = {}
    P = layout.prefix
    day_sums: dict[str, dict[str, Amount]] = {}  # day key → its sums
    scope_days: list[tuple[str, dict[str, Amount]]] = []  # (scope, a day's sums): the totals
    retracted: dict[str, dict[str, Amount]] = {}  # scope → what late events took back
    for (scope, minute), deltas in batch.counters.items():
        # integral values of integer counters as ints (HINCRBY), the rest as floats
        named = {name: v if name in FLOAT_COUNTERS or v.__class__ is int or v != int(v) else int(v)
                 for name, v in deltas.items() if v or name in FLOAT_COUNTERS}
        if not named:
            continue
        m = minutes.get(minute)
        if m is None:
            m = minutes[minute] = _minute(minute, layout, now_ms)
        key = f"{P}d:{scope}:{m.date}"
        sums = day_sums.get(key)
        if sums is None:
            sums = day_sums[key] = index(key, str(m.day.day))
            scope_days.append((scope, sums))
            expire[key] = m.day_expiry
        _add(sums, named)
        if m.minute_index is not None:  # one group per (scope, minute): its deltas as they are
            key = f"{P}m:{scope}:{m.hour_ms}"
            _add(index(key, m.minute_index), named)
            expire[key] = m.minute_expiry
            increments.promote.add(key)
            note_newest_minute(newest, layout, scope, minute, int(m.minute_index))
        if m.hour_index is not None:
            key = f"{P}h:{scope}:{m.day_ms}"
            _add(index(key, m.hour_index), named)
            expire[key] = m.hour_expiry
        # what a late event takes back also grows the total's `retracted:` field, so that what
        # is exported (net + retracted, and retracted) only goes up (docs/observability.md)
        if min(named.values()) < 0:
            back = retracted.get(scope)
            if back is None:
                back = retracted[scope] = {}
            _add(back, {name: -v for name, v in named.items() if v < 0})
        kind, _, ident = scope.partition(":")
        if ident:
            seen = (layout.scopes_key(kind), ident)
            if scopes.get(seen, minute) <= minute:
                scopes[seen] = minute
            ix = layout.month_index_key(kind, m.day.month)
            if (ix, ident) not in months:
                months.add((ix, ident))
                expire[ix] = month_index_expiry(m.day.month, layout.tz)
        elif kind == "center":  # its `today` read from its day hash (stream/readers/sums.py)
            seen = layout.bound_of(scope)
            if scopes.get(seen, minute) <= minute:
                scopes[seen] = minute
    for scope, sums in scope_days:  # every group went to its day: the totals are the days' sums
        _add(index(f"{P}t:{scope}", ""), sums)
    for scope, back in retracted.items():
        _add(index(f"{P}t:{scope}", "retracted"), back)
    moves, history = team_move_plan(batch.team_moves, layout, now_ms)
    # the agent's history moves out of the old team and into the new one: both teams' newest
    # minute is raised to the agent's (a bound readers rely on: the commit's clock is not one, an
    # event may be stamped ahead of it); when the agent has none, the clock (it has no data, or a
    # store older than the index: its data predates the upgrade, by the contract's clock skew at most)
    move_seen = [[layout.scopes_key("agent"), agent, layout.scopes_key("team"), team, str(now_ms)]
                 for agent, old_team, new_team in batch.team_moves
                 for team in ((old_team, new_team) if old_team else (new_team,))]
    incr, promote = increments.payload()
    live = [[layout.key("live:calls"), cid, json.dumps(v) if v else False]
            for cid, v in batch.live_calls.items()]
    live += [[layout.key("live:agents"), aid, json.dumps(v) if v else False]
             for aid, v in batch.live_agents.items()]
    payload = {
        "prefix": layout.prefix,
        "offsets": [[tp, exp, str(new)] for tp, exp, new in batch.offsets],
        "entities": [[e.key, e.version, i + 2 if e.json is not None else False, e.ttl_ms,
                      e.sibling or False, e.team if e.team is not None else False]
                     for i, e in enumerate(batch.entities)],
        "teams": [[k, t] for k, t in batch.agent_teams.items()],
        "moves": moves,
        "history": history,
        "incr": incr,
        "promote": promote,
        "promote_at": PROMOTE_AT,
        "newest": list(newest.values()),
        "expire": [[k, t] for k, t in expire.items()],
        "live": live,
        "scopes": [[key, ident, str(seen)] for (key, ident), seen in sorted(scopes.items())],
        "move_seen": move_seen,
        "months": [[key, ident] for key, ident in sorted(months)],
        "retire": [[layout.scopes_key(kind), kind] for kind in SCOPE_KINDS],
        "retire_before": str(scope_cutoff(now_ms)),
        "pipeline": [[k, v] for k, v in batch.pipeline.items() if v],
        "gauges": [[k, v] for k, v in batch.gauges.items()],
        "notify": updates_message(batch, now_ms) if batch.notify else False,
        "worker": [batch.worker, str(now_ms)] if batch.worker else False,
        "watermarks": [[tp, progress.encode()] for tp, progress in batch.watermarks.items()],
        "agents": [[a, r] for a, r in batch.agent_records.items()],
        "agent_calls": [[a, r] for a, r in batch.agent_call_records.items()],
        "leads": lead_sets(batch, layout),
    }
    # orjson: the same JSON as json.dumps (ints as ints, floats in their shortest round-trip
    # form), several times faster; redis-py sends the bytes as they are
    return [orjson.dumps(payload),
            *(e.json if e.json is not None else "" for e in batch.entities)]


def updates_message(batch: CommitBatch, now_ms: int) -> str:
    """The `updates` message: the commit's clock and the scopes it wrote counters for, so that a
    reader drops only those scopes' kept day sums (`stream.readers.sums.DayCache`). A team move
    takes minutes out of one team and into another and raises both teams' bounds: its message
    names nothing (the commit's clock alone, as older workers sent), and readers drop all."""
    if batch.team_moves:
        return str(now_ms)
    return orjson.dumps({"at": now_ms, "scopes": sorted({scope for scope, _ in batch.counters})}).decode()


def note_newest_minute(newest: dict[str, list[Any]], layout: Layout, scope: str, minute: int,
                       index: int) -> None:
    """Raise the newest minute written into the scope's hour to `index` (commit.lua keeps the
    largest, 59 for a minute hash written before the markers)."""
    key = layout.newest_minute_key(scope, minute)
    mark = newest.get(key)
    if mark is None:
        newest[key] = [key, index, minute_key_expiry(minute), layout.minute_key(scope, minute)]
    elif index > mark[1]:
        mark[1] = index


def team_move_plan(moves: list[TeamMove], layout: Layout,
                   now_ms: int) -> tuple[list[list[Any]], list[list[Any]]]:
    """The team moves as (agent scope, old team scope or False, new team scope, new team id),
    and once for them all the buckets an agent's history may hold (commit.lua makes each
    scope's key from a bucket's `before` and `after`): [before, after, for a day bucket the
    new team's month index and its expiry (else False, False), for a minute bucket not yet
    expired its newest-minute mark's before, after and expiry, which the script raises to 59
    in both teams where the agent's minute hash moved]. Nothing when there is no move."""
    if not moves:
        return [], []
    history: list[list[Any]] = []
    for b in history_buckets(layout, now_ms):
        entry: list[Any] = [b.before, b.after, *(b.month_index or (False, False))]
        if b.mark is not None and b.mark[2] > now_ms:
            entry += b.mark
        history.append(entry)
    return [[f"agent:{agent}", f"team:{old}" if old else False, f"team:{new}", new]
            for agent, old, new in moves], history
