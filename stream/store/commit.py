"""Turning a processed batch into one atomic, offset-guarded Redis commit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from stream.kpi.catalog import FLOAT_COUNTERS
from stream.kpi.retention import keep_until_ms
from stream.kpi.windows import HOUR_MS, MINUTE_MS, local_day_of
from stream.state.batch import TeamMove
from stream.state.call_state import LiveCall
from stream.store.layout import (
    SCOPE_KINDS,
    Layout,
    PartitionProgress,
    agent_history_suffixes,
    day_field,
    day_key_expiry,
    hour_field,
    hour_key_expiry,
    minute_field,
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
    counters: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)  # (scope, minute) → deltas
    team_moves: list[TeamMove] = field(default_factory=list)
    live_calls: dict[str, LiveCall | None] = field(default_factory=dict)
    live_agents: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    pipeline: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
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


class _Increments:
    """Every counter increment of a batch, summed per (hash, field): each field is then one
    command in Redis (an hour or total field gets one increment, not one per minute), and the
    script can check each against the stored value before its first write."""

    def __init__(self) -> None:
        self.ints: dict[str, dict[str, int]] = {}
        self.floats: dict[str, dict[str, float]] = {}

    def add(self, key: str, fields: list[tuple[str, str, float]]) -> None:
        """`fields`: (field, counter name, delta)."""
        ints, floats = self.ints.setdefault(key, {}), self.floats.setdefault(key, {})
        for f, name, value in fields:
            if name in FLOAT_COUNTERS or value != int(value) or f in floats:
                floats[f] = floats.get(f, 0.0) + float(value) + ints.pop(f, 0)
            elif value:
                ints[f] = ints.get(f, 0) + int(value)

    def payload(self) -> list[list[Any]]:
        """[[key, [field, int, ...], [field, float, ...]], ...]; values as strings (Lua's own
        number formatting keeps only 14 digits)."""
        out: list[list[Any]] = []
        for key, ints in self.ints.items():
            floats = self.floats.get(key, {})
            i = [x for f, v in ints.items() if v for x in (f, str(v))]
            fl = [x for f, v in floats.items() for x in (f, repr(v))]
            if i or fl:
                out.append([key, i, fl])
        return out


def encode(batch: CommitBatch, layout: Layout, now_ms: int) -> list[str]:
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
    newest: dict[str, list[Any]] = {}  # newest-minute key → [key, minute index, expiry, minute hash]
    for (scope, minute), deltas in batch.counters.items():
        named = [(name, v) for name, v in deltas.items() if v or name in FLOAT_COUNTERS]
        if not named:
            continue
        day = local_day_of(minute, layout.tz)
        buckets = [(layout.day_key(scope, day.date), day_field(day.day, ""),
                    day_key_expiry(day.date, layout.tz))]
        if minute_key_expiry(minute) > now_ms:
            buckets.append((layout.minute_key(scope, minute), minute_field(minute, ""),
                            minute_key_expiry(minute)))
            note_newest_minute(newest, layout, scope, minute, (minute % HOUR_MS) // MINUTE_MS)
        if hour_key_expiry(minute) > now_ms:
            buckets.append((layout.hour_key(scope, minute), hour_field(minute, ""),
                            hour_key_expiry(minute)))
        for bucket, prefix, expiry in buckets:
            increments.add(bucket, [(prefix + name, name, v) for name, v in named])
            expire[bucket] = expiry
        # what a late event takes back also grows the total's `retracted:` field, so that what
        # is exported (net + retracted, and retracted) only goes up (docs/observability.md)
        increments.add(layout.total_key(scope), [(name, name, v) for name, v in named]
                       + [(f"retracted:{name}", name, -v) for name, v in named if v < 0])
        kind, _, ident = scope.partition(":")
        if ident:
            key = (layout.scopes_key(kind), ident)
            scopes[key] = max(scopes.get(key, minute), minute)
            ix = layout.month_index_key(kind, day.month)
            if (ix, ident) not in months:
                months.add((ix, ident))
                expire[ix] = month_index_expiry(day.month, layout.tz)
    moves = team_move_keys(batch.team_moves, layout, now_ms)
    for _, old, new in batch.team_moves:  # a moved minute hash: any minute may have changed
        for kind, bucket in agent_history_suffixes(now_ms, layout.tz):
            if kind == "m" and minute_key_expiry(int(bucket)) > now_ms:
                for team in (old, new) if old else (new,):
                    note_newest_minute(newest, layout, f"team:{team}", int(bucket), 59)
    for _, _, new_team in batch.team_moves:  # the agent's history comes with it: seen now
        scopes[(layout.scopes_key("team"), new_team)] = now_ms
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
        "incr": increments.payload(),
        "newest": list(newest.values()),
        "expire": [[k, t] for k, t in expire.items()],
        "live": live,
        "scopes": [[key, ident, str(seen)] for (key, ident), seen in sorted(scopes.items())],
        "months": [[key, ident] for key, ident in sorted(months)],
        "retire": [[layout.scopes_key(kind), kind] for kind in SCOPE_KINDS],
        "retire_before": str(scope_cutoff(now_ms)),
        "pipeline": [[k, v] for k, v in batch.pipeline.items() if v],
        "gauges": [[k, v] for k, v in batch.gauges.items()],
        "notify": str(now_ms) if batch.notify else False,
        "worker": [batch.worker, str(now_ms)] if batch.worker else False,
        "watermarks": [[tp, progress.encode()] for tp, progress in batch.watermarks.items()],
        "agents": [[a, r] for a, r in batch.agent_records.items()],
        "agent_calls": [[a, r] for a, r in batch.agent_call_records.items()],
        "leads": lead_sets(batch, layout),
    }
    return [json.dumps(payload, separators=(",", ":")),
            *(e.json if e.json is not None else "" for e in batch.entities)]


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


def team_move_keys(moves: list[TeamMove], layout: Layout,
                   now_ms: int) -> list[list[Any]]:
    """(agent key, old team key or False, new team key[, new team's month index, team id]) for
    every bucket of agent history: a day hash moved also puts the new team in that month's
    index (for breakdowns by team)."""
    out: list[list[Any]] = []
    for agent, old, new in moves:
        for kind, bucket in agent_history_suffixes(now_ms, layout.tz):
            agent_key, old_key, new_key = (f"{layout.prefix}{kind}:{scope}:{bucket}"
                                           for scope in (f"agent:{agent}", f"team:{old}", f"team:{new}"))
            move: list[Any] = [agent_key, old_key if old else False, new_key]
            if kind == "d":  # bucket: the local date; the index is per local month
                move += [layout.month_index_key("team", bucket[:7]), new,
                         month_index_expiry(bucket[:7], layout.tz)]
            out.append(move)
        tk = layout.total_key
        out.append([tk(f"agent:{agent}"), tk(f"team:{old}") if old else False, tk(f"team:{new}")])
    return out
