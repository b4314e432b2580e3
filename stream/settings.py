"""Process settings from environment variables, all prefixed `CALLKPI_` (see README).

Business configuration (targets, costs, compliance limits, thresholds, time zone) lives in the
TOML file named by `CALLKPI_CONFIG`; this module holds only what a process needs to connect and run.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

PREFIX = "CALLKPI_"
DEFAULT_BROKER_PORT = 19092
DEFAULT_REDIS_PORT = 16379
DEFAULT_HTTP_PORT = 8077
"""Defaults sit away from 9092/6379/8080 so the embedded stack never clashes with a real one."""
OFFSET_AHEAD_POLICIES = ("pause", "reset")

_EXPECTED = {int: "an integer", float: "a number", str: "a string"}


class Range(NamedTuple):
    """The values a numeric setting may take: `low` (excluded when `above`) up to `high`."""

    low: float
    high: float = math.inf
    above: bool = False

    def expected(self, kind: type) -> str:
        if (self.low, self.high) == (0, 1) and kind is int:
            return "0 or 1"
        what = "an integer" if kind is int else "a number"
        low = f"{self.low:g}"
        if self.high != math.inf:
            return f"{what} from {low} to {self.high:g}"
        return f"{what} above {low}" if self.above else f"{what} of at least {low}"

    def holds(self, value: float) -> bool:
        # NaN fails every comparison, and infinity is no duration
        return math.isfinite(value) and (value > self.low if self.above else value >= self.low) \
            and value <= self.high


_POSITIVE = Range(0, above=True)
RANGES: dict[str, Range] = {
    "partitions": Range(1), "http_port": Range(1, 65535),
    "state_horizon_hours": _POSITIVE, "agent_state_hours": _POSITIVE, "state_cache_mb": Range(0),
    "batch_max": Range(1), "batch_hold_ms": Range(0),
    "session_timeout_s": _POSITIVE, "stop_timeout_s": _POSITIVE, "commit_interval_s": _POSITIVE,
    "pipeline_process": Range(0, 1), "allow_redis_eviction": Range(0, 1),
}
"""A value out of its range would stall or break a process far from where it was set (a stop
timeout of 0 ends every stop at once, a NaN one never does; a batch of 0 records reads nothing):
refused where it is read, naming the variable."""


def _out_of_range(name: str, value: object) -> str | None:
    """What the setting expects, when `value` is outside its range (None: it is inside)."""
    bounds = RANGES.get(name)
    if bounds is None or not isinstance(value, (int, float)) or bounds.holds(value):
        return None
    return bounds.expected(int if isinstance(value, int) else float)


class SettingsError(ValueError):
    """A `CALLKPI_*` variable holds a value its setting cannot take (the message names it)."""


@dataclass(frozen=True)
class Settings:
    bootstrap: str = f"127.0.0.1:{DEFAULT_BROKER_PORT}"
    redis_url: str = f"redis://127.0.0.1:{DEFAULT_REDIS_PORT}/0"
    input_topic: str = "dialer.events"
    dlq_topic: str = "dialer.events.dlq"
    partitions: int = 4
    app_id: str = "callkpi"
    key_prefix: str = "ck:"
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    config: str = ""
    api_token: str = ""
    timezone: str = ""
    state_horizon_hours: float = 72.0
    agent_state_hours: float = 6.0
    state_cache_mb: float = 64.0  # committed entity states kept in the pipeline process
    batch_max: int = 5000  # most records per fetch, and so per batch (processing/fetch.py); BENCHMARKS.md
    batch_hold_ms: int = 0
    """How long a batch smaller than `batch_max` waits for the fetches after it (0: it goes
    at once). Live traffic then commits fewer, larger batches, which cost Redis and the
    pipeline far less per event, for at most this much more latency (processing/fetch.py)."""
    session_timeout_s: float = 10.0
    stop_timeout_s: float = 30.0
    """How long a worker's stop waits for its batches in flight to commit before it exits
    without them (as a crash would: they are redone by the next worker)."""
    commit_interval_s: float = 1.0
    pipeline_process: int = 1  # 1: the batch step runs in a child process (two cores); 0: inline
    worker_id: str = ""
    data_dir: str = ""
    offset_ahead_policy: str = "pause"
    """What a worker does with a partition whose applied offset in Redis is ahead of the topic's
    end (topic recreated, or a store of another cluster): `pause` it (default) or `reset` the
    store's offset to where the consumer group reads (docs/operations.md)."""
    allow_redis_eviction: int = 0
    """1: run even when Redis's maxmemory-policy is not `noeviction` (evicted offsets or states
    double count; only for a throw-away Redis)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            expected = _out_of_range(f.name, getattr(self, f.name))
            if expected:
                raise SettingsError(f"{PREFIX}{f.name.upper()}={getattr(self, f.name)!r}: expected {expected}")
        if self.offset_ahead_policy not in OFFSET_AHEAD_POLICIES:
            raise SettingsError(f"{PREFIX}OFFSET_AHEAD_POLICY={self.offset_ahead_policy!r}: expected "
                             f"one of {', '.join(OFFSET_AHEAD_POLICIES)}")

    @property
    def zone(self) -> ZoneInfo:
        """The center's time zone (`CALLKPI_TIMEZONE`; the worker and `serve` set it from the
        configuration file's `timezone` when the variable is empty): day buckets hold its local
        days."""
        from zoneinfo import ZoneInfo
        return ZoneInfo(self.timezone or "UTC")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read `CALLKPI_<FIELD>` for every field; explicit overrides win."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            kind: type[int | float | str] = type(f.default)  # type: ignore[assignment]  # every field has one
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise SettingsError(f"{PREFIX}{f.name.upper()}={raw!r}: expected {_EXPECTED[kind]}") from None
            expected = _out_of_range(f.name, values[f.name])
            if expected:
                raise SettingsError(f"{PREFIX}{f.name.upper()}={raw!r}: expected {expected}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
