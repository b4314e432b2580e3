"""The validator's fast path: well-formed events accepted at a fraction of the reference's cost.

`validate` runs once per event on the worker's hot path. Almost every message is a well-formed
event in the form dialers write (compact JSON, canonical `ts`, strings without padding), so this
module accepts those in one pass: `orjson` instead of `json`, one precompiled table per event
type, non-raising checks that only say "fine, here is the value" or "not sure". Anything it is
not sure of (a broken rule, but also an unusual valid form: padded strings, an offset `ts`, a
non-bytes value) goes to the reference validator (`validate_reference` in
`stream/contract/validate.py`), which decides and words every rejection. So the fast path needs to be right only about what it
accepts: the same `Event`, field for field and type for type, as the reference would return
(`tests/properties/test_fast_validation.py` compares the two on generated valid and broken
messages).

Why `orjson` may stand in for `json` here: on every input orjson accepts, it returns what
`json.loads` returns except for integers beyond 64 bits (orjson gives a float), and no such
number is within any field's bounds, so an event carrying one is never accepted here; orjson
refuses what `json` also refuses (invalid UTF-8, a BOM, trailing data) and more (NaN, Infinity,
lone surrogate escapes, numbers that overflow a double), and those go to the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from stream.contract.events import (
    MAX_DURATION_MS,
    MAX_FUTURE_MS,
    MAX_MESSAGE_BYTES,
    MAX_STRING_CHARS,
    Event,
    Rejection,
)
from stream.contract.timestamps import parse_ts
from stream.contract.validate import (
    _CALL_TYPES,
    _NO_DEFAULT,
    IGNORED,
    REQUIRED,
    SHAPES,
    SPECS,
    Check,
    Shape,
    validate_reference,
)

_UNSURE: Any = object()
"""A fast check's answer when the value is not one it can vouch for: the reference decides."""

FastCheck = Callable[[Any], Any]
"""raw non-null value -> normalized value or `_UNSURE`; never raises."""


def _encodable(s: str) -> bool:
    """No unpaired surrogate (the reference's `check_str` rule for non-ASCII strings)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ms(v: Any) -> Any:
    if type(v) is int:
        return v if 0 <= v <= MAX_DURATION_MS else _UNSURE
    if type(v) is float and v.is_integer() and 0 <= v <= MAX_DURATION_MS:
        return int(v)
    return _UNSURE


def _in_range(lo: float, hi: float, as_float: bool) -> FastCheck:
    def check(v: Any) -> Any:
        tp = type(v)
        if (tp is int or tp is float) and lo <= v <= hi:  # NaN fails the comparison
            return float(v) if as_float else v
        return _UNSURE

    return check


def _csat(v: Any) -> Any:
    if type(v) is int:
        return v if 1 <= v <= 5 else _UNSURE
    if type(v) is float and v.is_integer() and 1 <= v <= 5:
        return int(v)
    return _UNSURE


def _bool(v: Any) -> Any:
    return v if v is True or v is False else _UNSURE


def _fast_check(shape: Shape) -> FastCheck:
    """The non-raising twin of one reference checker, from the shape it registered (enums and
    strings are checked inline in `accept`)."""
    kind = shape.kind
    if kind == "ms":
        return _ms
    if kind == "number":
        return _in_range(shape.lo, shape.hi, shape.as_float)
    if kind == "csat":
        return _csat
    if kind == "bool":
        return _bool
    raise ValueError(f"no fast form for checker shape {kind!r}")


_KIND_ENUM, _KIND_TEXT, _KIND_MS, _KIND_OTHER = "enum", "text", "ms", "other"


class FastField(NamedTuple):
    """One field of a type, as the fast path checks it: enums, strings and durations (most
    fields) are checked inline, the rest by their fast check (`arg`)."""

    name: str
    required: bool
    kind: str
    arg: Any  # the allowed values of an enum, a string's length limit, else the fast check
    default: Any


class FastSpec(NamedTuple):
    """One event type's rules, ready for one pass over the decoded object."""

    call: bool
    campaign_required: bool
    agent: str
    fields: tuple[FastField, ...]


def _field(name: str, required: bool, check: Check, default: Any) -> FastField:
    shape = SHAPES[check]
    if shape.kind == "enum":
        return FastField(name, required, _KIND_ENUM, shape.allowed, default)
    if shape.kind == "text":
        return FastField(name, required, _KIND_TEXT, shape.limit, default)
    if shape.kind == "ms":
        return FastField(name, required, _KIND_MS, _ms, default)
    return FastField(name, required, _KIND_OTHER, _fast_check(shape), default)


FAST_SPECS: dict[str, FastSpec] = {
    etype: FastSpec(etype in _CALL_TYPES, campaign_required, agent_rule,
                    tuple(_field(*f) for f in extra))
    for etype, (agent_rule, campaign_required, extra) in SPECS.items()
}
assert all(len(v) <= MAX_STRING_CHARS for shape in SHAPES.values() for v in shape.allowed)
assert all(v == v.strip() and v.isascii() for shape in SHAPES.values() for v in shape.allowed)


def _id(v: Any) -> str | None:
    """A contract string (1..128 characters after trimming, no lone surrogate), or None."""
    if type(v) is str:
        s = v.strip()
        if 0 < len(s) <= MAX_STRING_CHARS and (s.isascii() or _encodable(s)):
            return s
    return None


# --- event time --------------------------------------------------------------------------------

_MINUTES: dict[str, int] = {}
"""Epoch ms of the minutes seen in canonical `ts` strings ("2026-11-20T09:15" -> ms): events
arrive roughly in time order, so the calendar arithmetic is done once a minute, not per event."""
_MAX_MINUTES = 4096


def _ts(raw: Any) -> int | None:
    """`ts` as epoch ms, or None if it is not valid (the reference then says why)."""
    if type(raw) is int:
        return raw
    if type(raw) is str and len(raw) == 24 and raw[23] == "Z" and raw[19] == "." and raw[16] == ":":
        # the canonical form YYYY-MM-DDTHH:MM:SS.mmmZ (format_ts, the simulator, the adapters):
        # the minute from the cache, then seconds and milliseconds as one 5-digit number
        minute = _MINUTES.get(raw[:16])
        if minute is None:
            minute = _minute(raw[:16])
        sec_ms = raw[17:19] + raw[20:23]
        if minute is not None and sec_ms.isdigit() and sec_ms.isascii() and sec_ms < "6":
            return minute + int(sec_ms)  # "6" and above: a leap second, left to parse_ts
    try:
        return parse_ts(raw)
    except ValueError:
        return None


def _minute(prefix: str) -> int | None:
    """The minute's epoch ms, cached, if `prefix` + ":00Z" is a valid `ts` (a padded prefix that
    parse_ts would trim leaves at most 19 characters, too short to be valid: never cached)."""
    try:
        ms = parse_ts(prefix + ":00Z")
    except ValueError:
        return None
    if len(_MINUTES) >= _MAX_MINUTES:
        _MINUTES.clear()
    _MINUTES[prefix] = ms
    return ms


# --- entry point -------------------------------------------------------------------------------


def validate(raw: Any, *, now_ms: int, max_age_ms: int) -> Event | Rejection:
    """Parse and validate one raw Kafka message value (bytes; anything else is rejected: `Any`,
    not `bytes`, because compiled with mypyc an annotation is enforced and would raise). Never
    raises.

    Same answer as the reference validator (`validate_reference`) for every input; well-formed
    events are accepted here without it. `now_ms` is the service clock (epoch ms); `max_age_ms`
    the longest retention.
    """
    if type(raw) is bytes and len(raw) <= MAX_MESSAGE_BYTES:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(obj) is dict:
                event = accept(obj, now_ms, max_age_ms)
                if event is not None:
                    return event
    return validate_reference(raw, now_ms=now_ms, max_age_ms=max_age_ms)


def accept(obj: dict[str, Any], now_ms: int, max_age_ms: int) -> Event | None:
    """The `Event` for a decoded message that is valid in the usual form; None if not sure."""
    get = obj.get
    etype = get("type")
    spec = FAST_SPECS.get(etype) if type(etype) is str else None
    if spec is None:
        return None
    call, campaign_required, agent_rule, rules = spec
    v = get("v")
    if v is not None and (type(v) is not int or v != 1):
        return None
    event_id = _id(get("event_id"))
    if event_id is None:
        return None
    ts = _ts(get("ts"))
    if ts is None or not now_ms - max_age_ms <= ts <= now_ms + MAX_FUTURE_MS:
        return None
    call_id = None
    if call:
        call_id = _id(get("call_id"))
        if call_id is None:
            return None
    campaign_id = None
    raw = get("campaign_id")
    if raw is not None:
        campaign_id = _id(raw)
        if campaign_id is None and (campaign_required or not _blank(raw)):
            return None
    elif campaign_required:
        return None
    agent_id = None
    if agent_rule is not IGNORED:
        raw = get("agent_id")
        if raw is not None:
            agent_id = _id(raw)
            if agent_id is None and (agent_rule is REQUIRED or not _blank(raw)):
                return None
        elif agent_rule is REQUIRED:
            return None
    fields: dict[str, Any] = {}
    for name, required, kind, arg, default in rules:
        val = get(name)
        if val is not None:
            if kind is _KIND_ENUM:  # blank (absent if optional) falls through to the end
                if type(val) is not str:
                    return None
                val = val.strip()
                if val in arg:
                    fields[name] = val
                    continue
                if val:
                    return None
            elif kind is _KIND_TEXT:
                if type(val) is not str:
                    return None
                val = val.strip()
                if 0 < len(val) <= arg and (val.isascii() or _encodable(val)):
                    fields[name] = val
                    continue
                if val:
                    return None
            elif kind is _KIND_MS and type(val) is int:
                if 0 <= val <= MAX_DURATION_MS:
                    fields[name] = val
                    continue
                return None
            else:
                val = arg(val)
                if val is _UNSURE:
                    return None
                fields[name] = val
                continue
        if required:
            return None
        if default is not _NO_DEFAULT:
            fields[name] = default
    event = _new(Event)
    _set_event_id(event, event_id)
    _set_type(event, etype)
    _set_ts_ms(event, ts)
    _set_campaign_id(event, campaign_id)
    _set_call_id(event, call_id)
    _set_agent_id(event, agent_id)
    _set_fields(event, fields)
    return event


def _blank(v: Any) -> bool:
    return type(v) is str and not v.strip()


# `Event(...)` goes through the frozen dataclass's `object.__setattr__` per attribute; setting
# its slots directly builds the same object in half the time.
_new = object.__new__
_set_event_id, _set_type, _set_ts_ms, _set_campaign_id, _set_call_id, _set_agent_id, _set_fields = (
    getattr(Event, name).__set__
    for name in ("event_id", "type", "ts_ms", "campaign_id", "call_id", "agent_id", "fields")
)
