"""Redis key layout (documented in docs/redis-layout.md; keep the two in step).

All keys start with a configurable prefix (default `ck:`).

| key | type | holds | TTL |
|---|---|---|---|
| `m:<scope>:<hour_ms>` | hash | minute counters of that hour, field `<minute 0..59>:<counter>` | hour + 49 h |
| `h:<scope>:<day_ms>` | hash | hour counters of that UTC day, field `<hour 0..23>:<counter>` | day + 37 d |
| `t:<scope>` | hash | lifetime totals, field `<counter>` (net) and `retracted:<counter>` | deleted when the scope retires |
| `seen:<kind>` | sorted set | id → newest minute with data, per scope kind (campaign, team, agent, caller_id, list) | members retire 35 d + 1 h after it |
| `st:call:<id>` / `st:agent:<id>` | hash | entity state: `v` version, `s` JSON | state horizon |
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

from dataclasses import dataclass
from typing import NamedTuple

from stream.kpi.windows import DAY_MS, HOUR_MS, HOUR_READABLE_MS, MINUTE_MS, MINUTE_RETENTION_MS, floor_to

SCOPE_KINDS = ("campaign", "team", "agent", "caller_id", "list", "variant")
HOUR_KEY_TTL_MS = 37 * DAY_MS
SCOPE_RETENTION_MS = HOUR_READABLE_MS + HOUR_MS
"""A scope whose newest data is older than this has nothing any range can read (hour buckets
are read back 35 days, an hour whole): it retires from the scope index, its totals go."""


@dataclass(frozen=True, slots=True)
class Layout:
    prefix: str = "ck:"

    def minute_key(self, scope: str, minute_ms: int) -> str:
        return f"{self.prefix}m:{scope}:{floor_to(minute_ms, HOUR_MS)}"

    def hour_key(self, scope: str, hour_ms: int) -> str:
        return f"{self.prefix}h:{scope}:{floor_to(hour_ms, DAY_MS)}"

    def total_key(self, scope: str) -> str:
        return f"{self.prefix}t:{scope}"

    def retention_key(self, scope: str, period: str, period_id: str) -> str:
        """The sorted set of leads with a sale in one local week or month (lead → sales)."""
        return f"{self.prefix}ret:{scope}:{period}:{period_id}"

    def scopes_key(self, kind: str) -> str:
        """The scope index of a kind: a sorted set, id → newest minute (epoch ms) with data."""
        return f"{self.prefix}seen:{kind}"

    def legacy_scopes_key(self, kind: str) -> str:
        """The plain set of ids that stores written before scopes retired kept (migrated)."""
        return f"{self.prefix}scopes:{kind}"

    def call_key(self, call_id: str) -> str:
        return f"{self.prefix}st:call:{call_id}"

    def agent_key(self, agent_id: str) -> str:
        return f"{self.prefix}st:agent:{agent_id}"

    def key(self, name: str) -> str:
        """Singleton keys: offsets, watermarks, agents, live:calls, live:agents, pipeline,
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


def agent_history_suffixes(now_ms: int) -> list[tuple[str, str]]:
    """Every (kind, bucket) suffix that may hold an agent's history, for a team move."""
    out = [("m", str(h)) for h in range(floor_to(now_ms - MINUTE_RETENTION_MS, HOUR_MS),
                                        now_ms + 2 * HOUR_MS, HOUR_MS)]
    out += [("h", str(d)) for d in range(floor_to(now_ms - HOUR_KEY_TTL_MS, DAY_MS),
                                         now_ms + DAY_MS, DAY_MS)]
    return out
