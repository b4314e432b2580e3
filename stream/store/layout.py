"""Redis key layout (documented in docs/redis-layout.md; keep the two in step).

All keys start with a configurable prefix (default `ck:`).

| key | type | holds | TTL |
|---|---|---|---|
| `m:<scope>:<hour_ms>` | hash | minute counters of that hour, field `<minute 0..59>:<counter>`; a hash table from 32 fields (commit.PROMOTE_AT) | hour + 49 h |
| `mx:<scope>:<hour_ms>` | string | newest minute (0..59) written into `m:<scope>:<hour_ms>`; 59 when unknown (team moves, hashes written before it) | as the minute hash |
| `h:<scope>:<day_ms>` | hash | hour counters of that UTC day, field `<hour 0..23>:<counter>` | day + 37 d |
| `d:<scope>:<YYYY-MM-DD>` | hash | counters of that local day (the center's zone), field `<day of month>:<counter>` | day end + 401 d |
| `ix:<kind>:<YYYY-MM>` | set | ids of a scope kind with data in that local month (breakdowns over long ranges) | month end + 401 d |
| `t:<scope>` | hash | lifetime totals, field `<counter>` (net) and `retracted:<counter>` | deleted when the scope retires |
| `seen:<kind>` | sorted set | id → newest minute with data, per scope kind (campaign, team, agent, caller_id, list) | members retire 35 d + 1 h after it |
| `seen-center` | sorted set | `center` → the center's newest minute with data (only raised) | none |
| `st:call:<id>` / `st:agent:<id>` / `st:agent-calls:<id>` | hash | entity state: `v` version, `s` JSON (an agent's in two parts, versioned apart; its states part also `t`, the agent's team) | state horizon |
| `agents` | hash | agent id → JSON record that outlives its state: team, newest event, had `agent.state` | none |
| `offsets` | hash | `<topic>:<partition>` → last applied offset | none |
| `watermarks` | hash | `<topic>:<partition>` → `<newest event ms applied>:<caught up 0/1>` | none |
| `live:calls` / `live:agents` | hash | id → JSON live status | pruned by the worker |
| `pipeline` | hash | pipeline counters and the latency histogram | none |
| `gauges` | hash | pipeline gauges (consumer lag per partition, newest event per campaign) | none |
| `workers` | hash | worker id → last heartbeat ms | none |
| `updates` | pub/sub channel | a message after every commit (wallboard push) | – |
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from stream.kpi.windows import (
    DAY_MS,
    DAY_READABLE_MS,
    HOUR_MS,
    HOUR_READABLE_MS,
    MINUTE_MS,
    MINUTE_RETENTION_MS,
    add_months,
    floor_to,
    local_date,
    local_start,
)

SCOPE_KINDS = ("campaign", "team", "agent", "caller_id", "list", "variant")
BOUNDED_KINDS = frozenset({"agent", "campaign", "caller_id", "list", "team", "center"})
"""Scope kinds whose newest-minute score (`Layout.bound_of`: `seen:<kind>`, the center's own key;
only raised) bounds every minute their hashes hold: each counter write raises it to its minute,
and a team move raises both teams' to its agent's (a store written before the team-move rule
stamped the commit's clock instead, which an agent's event stamped ahead of it could pass: that
can be off for the contract's clock skew after the upgrade). Variants have no index. Readers
take a day's sums from its day hash only for these (`Store.window_counters`, `readers/sums.py`)."""
HOUR_KEY_TTL_MS = 37 * DAY_MS
SCOPE_RETENTION_MS = HOUR_READABLE_MS + HOUR_MS
"""A scope whose newest data is older than this has nothing any range can read (hour buckets
are read back 35 days, an hour whole): it retires from the scope index, its totals go."""


UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Layout:
    prefix: str = "ck:"
    tz: ZoneInfo = field(default=UTC)
    """The center's zone: day buckets hold its local days (written by the worker, read by
    readers; both must use the same zone, `docs/history.md`)."""

    def __reduce__(self) -> tuple[type[Layout], tuple[Any, ...]]:
        """Pickled by its fields (as `Thresholds`: a compiled frozen dataclass cannot be
        unpickled field by field)."""
        return (Layout, tuple(getattr(self, f.name) for f in fields(self)))

    def minute_key(self, scope: str, minute_ms: int) -> str:
        return f"{self.prefix}m:{scope}:{floor_to(minute_ms, HOUR_MS)}"

    def newest_minute_key(self, scope: str, minute_ms: int) -> str:
        """The newest minute index (0..59) written into the scope's minute hash of that hour: a
        reader of a prefix of the hour ending after it takes the hour field instead
        (`stream/readers/sums.py`)."""
        return f"{self.prefix}mx:{scope}:{floor_to(minute_ms, HOUR_MS)}"

    def hour_key(self, scope: str, hour_ms: int) -> str:
        return f"{self.prefix}h:{scope}:{floor_to(hour_ms, DAY_MS)}"

    def day_key(self, scope: str, day: str) -> str:
        """The counters of a local day (`YYYY-MM-DD`, a `LocalDay.date`)."""
        return f"{self.prefix}d:{scope}:{day}"

    def month_index_key(self, kind: str, month: str) -> str:
        """The ids of `kind` with data in a local month (a set)."""
        return f"{self.prefix}ix:{kind}:{month}"

    def total_key(self, scope: str) -> str:
        return f"{self.prefix}t:{scope}"

    def retention_key(self, scope: str, period: str, period_id: str) -> str:
        """The sorted set of leads with a sale in one local week or month (lead → sales)."""
        return f"{self.prefix}ret:{scope}:{period}:{period_id}"

    def scopes_key(self, kind: str) -> str:
        """The scope index of a kind: a sorted set, id → newest minute (epoch ms) with data."""
        return f"{self.prefix}seen:{kind}"

    def bound_of(self, scope: str) -> tuple[str, str]:
        """(sorted set, member) whose score is the scope's newest minute with data (only raised):
        `seen:<kind>` for the indexed kinds; the center's in a key of its own (`seen-center`,
        member `center`), outside the index that lists and retires scopes."""
        kind, _, ident = scope.partition(":")
        if kind == "center":
            return f"{self.prefix}seen-center", "center"
        return self.scopes_key(kind), ident

    def legacy_scopes_key(self, kind: str) -> str:
        """The plain set of ids that stores written before scopes retired kept (migrated)."""
        return f"{self.prefix}scopes:{kind}"

    def call_key(self, call_id: str) -> str:
        return f"{self.prefix}st:call:{call_id}"

    def agent_key(self, agent_id: str) -> str:
        """The states part of an agent's state (`Parts.STATES`; before the two parts, all of it)."""
        return f"{self.prefix}st:agent:{agent_id}"

    def agent_calls_key(self, agent_id: str) -> str:
        """The calls part of an agent's state (`Parts.CALLS`), versioned on its own."""
        return f"{self.prefix}st:agent-calls:{agent_id}"

    def key(self, name: str) -> str:
        """Singleton keys: offsets, watermarks, agents, agent_calls, live:calls, live:agents, pipeline,
        gauges, workers, updates."""
        return f"{self.prefix}{name}"


def scope_cutoff(now_ms: int) -> int:
    """Scopes whose newest minute with data is before this have retired."""
    return now_ms - SCOPE_RETENTION_MS


class PartitionProgress(NamedTuple):
    """How far a source partition has been applied, as the agent-state horizon needs it."""

    newest_ms: int | None
    """The newest event time applied from the partition (None: none yet)."""
    caught_up: bool
    """The partition's last applied fetch reached its high watermark: every record it holds
    is applied, so only new arrivals (late by at most the contract's lateness) can follow."""

    def encode(self) -> str:
        return f"{'' if self.newest_ms is None else self.newest_ms}:{int(self.caught_up)}"

    @classmethod
    def decode(cls, raw: str) -> PartitionProgress:
        """`<newest>:<caught up 0|1>`; a bare `<newest>` (written before the flag) is lagging."""
        newest, _, flag = raw.partition(":")
        return cls(int(newest) if newest else None, flag == "1")


def minute_field(minute_ms: int, counter: str) -> str:
    return f"{(minute_ms % HOUR_MS) // MINUTE_MS}:{counter}"


def hour_field(minute_ms: int, counter: str) -> str:
    return f"{(minute_ms % DAY_MS) // HOUR_MS}:{counter}"


def minute_key_expiry(minute_ms: int) -> int:
    """Expiry (epoch ms) of the minute hash holding this minute."""
    return floor_to(minute_ms, HOUR_MS) + MINUTE_RETENTION_MS


def hour_key_expiry(minute_ms: int) -> int:
    return floor_to(minute_ms, DAY_MS) + HOUR_KEY_TTL_MS


def day_field(day: int, counter: str) -> str:
    return f"{day}:{counter}"


def month_label(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


@lru_cache(maxsize=4096)
def day_key_expiry(day: str, tz: ZoneInfo) -> int:
    """Expiry (epoch ms) of a local day's hash (`YYYY-MM-DD`): readable 400 days after the day
    ends (a day of slack)."""
    d = date(int(day[:4]), int(day[5:7]), int(day[8:10]))
    return local_start(d + timedelta(days=1), tz) + DAY_READABLE_MS + DAY_MS


@lru_cache(maxsize=4096)
def month_index_expiry(month: str, tz: ZoneInfo) -> int:
    """Expiry of a local month's index (`YYYY-MM`): as the hash of its last day."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    return local_start(add_months(first, 1), tz) + DAY_READABLE_MS + DAY_MS


def history_days(now_ms: int, tz: ZoneInfo) -> list[str]:
    """Every local day whose hash may still be kept at `now_ms` (and tomorrow)."""
    d, last = local_date(now_ms - DAY_READABLE_MS - 2 * DAY_MS, tz), local_date(now_ms, tz)
    out = []
    while d <= last + timedelta(days=1):
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def agent_history_suffixes(now_ms: int, tz: ZoneInfo = UTC) -> list[tuple[str, str]]:
    """Every (kind, bucket) suffix that may hold an agent's history, for a team move."""
    out = [("d", day) for day in history_days(now_ms, tz)]
    out += [("m", str(h)) for h in range(floor_to(now_ms - MINUTE_RETENTION_MS, HOUR_MS),
                                        now_ms + 2 * HOUR_MS, HOUR_MS)]
    out += [("h", str(d)) for d in range(floor_to(now_ms - HOUR_KEY_TTL_MS, DAY_MS),
                                         now_ms + DAY_MS, DAY_MS)]
    return out


class HistoryBucket(NamedTuple):
    """One bucket that may hold an agent's history: its key is `before + scope + after`, so a
    team move names the buckets once per commit and the script makes each scope's keys."""

    before: str
    after: str
    month_index: tuple[str, int] | None
    """A day bucket's month index of teams and its expiry (a moved day indexes its new team)."""
    mark: tuple[str, str, int] | None
    """A minute bucket's newest-minute mark (`before`, `after`) and the hash's expiry."""


def history_buckets(layout: Layout, now_ms: int) -> tuple[HistoryBucket, ...]:
    """`agent_history_suffixes` as key templates of `layout` (the totals last). ~490 buckets,
    kept per set of bounds (they move once an hour, and at local midnight for the days): making
    them per team move was a third of a commit's encoding at a floor's shift start."""
    tz = layout.tz
    bounds = (layout, local_date(now_ms - DAY_READABLE_MS - 2 * DAY_MS, tz), local_date(now_ms, tz),
              floor_to(now_ms - MINUTE_RETENTION_MS, HOUR_MS), floor_to(now_ms + 2 * HOUR_MS - 1, HOUR_MS),
              floor_to(now_ms - HOUR_KEY_TTL_MS, DAY_MS), floor_to(now_ms + DAY_MS - 1, DAY_MS))
    kept = _HISTORY_BUCKETS.get(bounds)
    if kept is None:
        if len(_HISTORY_BUCKETS) >= 8:
            _HISTORY_BUCKETS.clear()
        kept = _HISTORY_BUCKETS[bounds] = _templates(layout, now_ms)
    return kept


def _templates(layout: Layout, now_ms: int) -> tuple[HistoryBucket, ...]:
    def template(key: str) -> tuple[str, str]:
        before, _, after = key.partition(_SCOPE)
        return before, after

    out = []
    for kind, bucket in agent_history_suffixes(now_ms, layout.tz):
        if kind == "d":
            month = bucket[:7]
            out.append(HistoryBucket(*template(layout.day_key(_SCOPE, bucket)),
                                     (layout.month_index_key("team", month), month_index_expiry(month, layout.tz)),
                                     None))
        elif kind == "m":
            hour = int(bucket)
            out.append(HistoryBucket(*template(layout.minute_key(_SCOPE, hour)), None,
                                     (*template(layout.newest_minute_key(_SCOPE, hour)), minute_key_expiry(hour))))
        else:
            out.append(HistoryBucket(*template(layout.hour_key(_SCOPE, int(bucket))), None, None))
    out.append(HistoryBucket(*template(layout.total_key(_SCOPE)), None, None))
    return tuple(out)


_HISTORY_BUCKETS: dict[tuple[Any, ...], tuple[HistoryBucket, ...]] = {}
"""`history_buckets` by its bounds: every clock with the same bounds has the same buckets
(`tests/unit/test_day_commit.py` checks it around hour, midnight and DST boundaries)."""
_SCOPE = "\x00"  # marks where the scope goes in a key made by `layout` (no prefix holds it)
