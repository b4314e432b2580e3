"""What every adapter shares, pure: deterministic event ids, the event builder, the time shift.

An event id is derived from the source record only (never from the wall clock or the time
shift), so reading the same input twice gives byte-identical events and the worker's dedupe
makes the totals exact.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from stream.contract import MAX_STRING_CHARS, format_ts


class Emitted(NamedTuple):
    """One v1 event ready to send: the Kafka key (call_id or agent_id) and the event dict."""

    key: str
    event: dict[str, Any]


class Mapped(NamedTuple):
    """What one source record gave: its events, and how the record is counted (`mapped`,
    `ignored`, `excluded`, `not_a_call`)."""

    events: list[Emitted]
    result: str


class BadRecord(ValueError):
    """A source record that cannot be read: counted by `reason`, dead-lettered, skipped."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def event_id(source: str, instance: str, natural_key: str, kind: str) -> str:
    """`source:instance:natural key:kind`; the natural key is hashed when the id gets too long."""
    eid = f"{source}:{instance}:{natural_key}:{kind}"
    if len(eid) <= MAX_STRING_CHARS:
        return eid
    digest = hashlib.sha1(natural_key.encode()).hexdigest()[:20]
    return f"{source}:{instance[:40]}:{digest}:{kind}"[:MAX_STRING_CHARS]


def line_key(raw: bytes) -> str:
    """The natural key of a line-oriented record: its content's hash (20 hex digits)."""
    return hashlib.sha1(raw).hexdigest()[:20]


# --------------------------------------------------------------------------- time shift

_DURATION = re.compile(r"\s*([+-]?\d+)\s*(d|day|days|w|week|weeks)\s*", re.I)


def parse_shift(text: str) -> int:
    """`--time-shift` text (`14d`, `2w`, `-1w`) to whole days; anything else is a ValueError."""
    m = _DURATION.fullmatch(text or "")
    if not m:
        raise ValueError(f"time shift must be whole days or weeks such as 7d or 2w, got {text!r}")
    n = int(m.group(1))
    return n * 7 if m.group(2).lower().startswith("w") else n


def shift_ms(ts_ms: int, days: int, tz: ZoneInfo) -> int:
    """Move an instant by whole days in the local wall clock of `tz` (weekday and time of day
    stay, across daylight-saving changes too)."""
    if not days:
        return ts_ms
    local = datetime.fromtimestamp(ts_ms / 1000, tz).replace(tzinfo=None)
    moved = (local + timedelta(days=days)).replace(tzinfo=tz)
    # A wall-clock time in a DST gap does not exist; round-tripping through UTC normalizes it.
    return int(round(moved.astimezone(UTC).timestamp() * 1000))


def local_to_ms(text: str, tz: ZoneInfo) -> int:
    """A naive `YYYY-MM-DD HH:MM:SS[.ffffff]` in the source's time zone (or with its own offset)."""
    s = text.strip()
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise BadRecord("bad_timestamp", f"not a date-time: {s[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return int(round(dt.timestamp() * 1000))


def datetime_to_ms(value: Any, tz: ZoneInfo) -> int:
    """A database DATETIME (naive: the source's zone) or a string, to epoch ms."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=tz)
        return int(round(dt.timestamp() * 1000))
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return local_to_ms(value, tz)
    raise BadRecord("bad_timestamp", f"not a date-time: {type(value).__name__}")


# --------------------------------------------------------------------------- building events

class Builder:
    """Makes v1 event dicts for one source instance, applying the time shift to every `ts`."""

    def __init__(self, source: str, instance: str, shift_days: int = 0,
                 tz: ZoneInfo | None = None) -> None:
        self.source, self.instance = source, instance
        self.shift_days = shift_days
        self.tz = tz or ZoneInfo("UTC")

    def call(self, kind: str, natural_key: str, ts_ms: int, call_id: str, campaign_id: str,
             **fields: Any) -> Emitted:
        ev: dict[str, Any] = {"event_id": event_id(self.source, self.instance, natural_key, kind),
                              "type": f"call.{kind}", "ts": self.ts(ts_ms),
                              "call_id": call_id, "campaign_id": campaign_id}
        ev.update({k: v for k, v in fields.items() if v is not None})
        return Emitted(call_id, ev)

    def agent(self, natural_key: str, ts_ms: int, agent_id: str, state: str,
              kind: str = "state", **fields: Any) -> Emitted:
        ev: dict[str, Any] = {"event_id": event_id(self.source, self.instance, natural_key, kind),
                              "type": "agent.state", "ts": self.ts(ts_ms),
                              "agent_id": agent_id, "state": state}
        ev.update({k: v for k, v in fields.items() if v is not None})
        return Emitted(agent_id, ev)

    def ts(self, ts_ms: int) -> str:
        return format_ts(shift_ms(ts_ms, self.shift_days, self.tz))


def seconds_ms(value: str | int | float | None, field: str) -> int:
    """A whole or fractional number of seconds (a queue_log or CDR field) to ms, ≥ 0."""
    if value is None or value == "":
        return 0
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise BadRecord("bad_number", f"{field} is not a number: {str(value)[:20]!r}") from None
    if not n >= 0 or n > 604_800:
        raise BadRecord("bad_number", f"{field} out of range: {n:g}")
    return int(round(n * 1000))


def dest_region(number: str | None, prefix_digits: int) -> str | None:
    """The most of a called number an event may carry: its first `prefix_digits` digits
    (0 = nothing). The number itself never leaves the adapter."""
    if not number or prefix_digits <= 0:
        return None
    digits = re.sub(r"\D", "", number)
    if len(digits) <= prefix_digits:
        return None  # too short to hide anything: an extension or a malformed number
    return digits[:prefix_digits]


class LineKeys:
    """Natural keys of line records: the line's hash, plus `#k` for the k-th identical line.

    Identical lines can only repeat within one second (every line starts with its time), so
    the counts are kept for the current second only; they go into the checkpoint, so a resumed
    read numbers repeats as a clean read would.
    """

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.second: str = state.get("second", "")
        self.counts: dict[str, int] = dict(state.get("counts", {}))

    def key(self, raw: bytes, second: str) -> str:
        if second != self.second:
            self.second, self.counts = second, {}
        h = line_key(raw)
        n = self.counts.get(h, 0)
        self.counts[h] = n + 1
        return h if n == 0 else f"{h}#{n}"

    def state(self) -> dict[str, Any]:
        return {"second": self.second, "counts": dict(self.counts)}
