"""Validate one raw Kafka message against dialer event contract v1: the reference validator.

`stream.contract.validate` (`fast.py`) accepts well-formed events itself and asks
`validate_reference` about everything else, so every rejection and its wording come from here.
Table-driven: one `json.loads`, dict lookups and a small checker function per field. Checkers raise `ValidationError` at the first broken rule and
`validate_dict` turns it into a `Rejection`; nothing else escapes (the worker must never crash
on input).

Order of checks (the first failure decides the reason):
size, UTF-8 + JSON, object, `v`, `event_id`, `type`, `ts` syntax, `call_id`, `campaign_id`,
`agent_id`, the type's own fields in contract order, then the clock (`future_timestamp`,
`too_old`) last, so a broken event gets the same reason whenever it is processed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from stream.contract.events import (
    ABANDON_REASON_ORDER,
    AGENT_STATE_ORDER,
    ANSWERED_BY_ORDER,
    CALL_TYPE_ORDER,
    CONTRACT_VERSION,
    DIAL_MODE_ORDER,
    DISPOSITION_ORDER,
    EVENT_TYPES,
    HANGUP_BY_ORDER,
    INTENT_ORDER,
    MAX_CODE_CHARS,
    MAX_DURATION_MS,
    MAX_FUTURE_MS,
    MAX_MESSAGE_BYTES,
    MAX_ORDER_VALUE,
    MAX_STRING_CHARS,
    UNANSWERED_REASON_ORDER,
    Event,
    Rejection,
    ValidationError,
)
from stream.contract.timestamps import parse_ts

Check = Callable[[str, Any], Any]
"""(field name, raw non-null value) -> normalized value; raises ValidationError."""


class Shape(NamedTuple):
    """What a checker accepts, as data: the fast path (`stream/contract/fast.py`) builds its
    non-raising twin of each checker from it."""

    kind: str  # text, enum, ms, number, csat, bool
    limit: int = MAX_STRING_CHARS
    allowed: frozenset[str] = frozenset()
    lo: float = 0
    hi: float = 0
    as_float: bool = False


SHAPES: dict[Check, Shape] = {}
"""Every checker of `SPECS`, with its shape."""

_NO_DEFAULT = object()


# --- describing values in messages ---------------------------------------------------------


def _show(v: object) -> str:
    """Short JSON-ish rendering of a bad value: messages must stay small even for 64 KiB input."""
    if isinstance(v, str):
        return repr(v) if len(v) <= 40 else repr(v[:40]) + f"... ({len(v)} chars)"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        r = repr(v)
        return r if len(r) <= 40 else r[:40] + "..."
    if isinstance(v, Mapping):
        return "an object"
    if isinstance(v, (list, tuple)):
        return "an array"
    return type(v).__name__


def _invalid(name: str, want: str, v: object) -> ValidationError:
    return ValidationError("invalid_field", f"field {name!r} must be {want}; got {_show(v)}")


# --- checkers ------------------------------------------------------------------------------

_STR_WANT = f"a non-empty string of at most {MAX_STRING_CHARS} characters (after trimming)"


def check_str(name: str, v: Any) -> str:
    """Contract string: trimmed, 1..128 characters, valid Unicode (no lone surrogates)."""
    if type(v) is not str:
        if not isinstance(v, str):
            raise _invalid(name, _STR_WANT, v)
        v = str(v)
    s = v.strip()
    if not 0 < len(s) <= MAX_STRING_CHARS:
        raise _invalid(name, _STR_WANT, v)
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            # JSON "\ud800" escapes decode to lone surrogates, which would crash any UTF-8
            # encoder downstream (Redis client, DLQ producer): refuse them here.
            raise ValidationError(
                "invalid_field", f"field {name!r} contains an unpaired UTF-16 surrogate"
            ) from None
    return s


def enum(values: tuple[str, ...], reason: str = "invalid_field") -> Check:
    """Checker for a string that must be one of `values` (trimmed, case-sensitive)."""
    allowed = frozenset(values)
    listing = ", ".join(values)

    def check(name: str, v: Any) -> str:
        s = check_str(name, v)
        if s not in allowed:
            raise ValidationError(reason, f"field {name!r} must be one of {listing}; got {_show(s)}")
        return s

    _TEXT_CHECKS.add(check)
    SHAPES[check] = Shape("enum", allowed=allowed)
    return check


def check_code(name: str, v: Any) -> str:
    """A 1.1 code (`disposition_code`, `variant`): a contract string of at most 64 characters."""
    s = check_str(name, v)
    if len(s) > MAX_CODE_CHARS:
        raise _invalid(name, f"a non-empty string of at most {MAX_CODE_CHARS} characters", v)
    return s


_TEXT_CHECKS: set[Check] = {check_str, check_code}
"""Checkers of string fields: for these an empty optional value means absent (contract 1.1)."""
SHAPES[check_str] = Shape("text")
SHAPES[check_code] = Shape("text", limit=MAX_CODE_CHARS)


def _blank(v: Any) -> bool:
    """An empty (or all-whitespace) string: what dialers send for "no value" (`"reason": ""`)."""
    return type(v) is str and not v.strip()


def check_ms(name: str, v: Any) -> int:
    """Duration in milliseconds: integer (1500.0 accepted as 1500), 0..7 days."""
    if type(v) is not int:
        if isinstance(v, float) and math.isfinite(v) and v.is_integer():
            v = int(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            v = int(v)
        else:
            raise _invalid(name, "an integer number of milliseconds", v)
    if not 0 <= v <= MAX_DURATION_MS:
        raise ValidationError(
            "out_of_range",
            f"field {name!r} must be between 0 and {MAX_DURATION_MS} ms (7 days); got {_show(v)}",
        )
    return v


def _number(name: str, v: Any) -> int | float:
    """A finite JSON number; booleans, NaN and Infinity are not numbers."""
    tp = type(v)
    if tp is int:
        return v
    if tp is float or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        if isinstance(v, float) and not math.isfinite(v):
            raise _invalid(name, "a finite number", v)
        return v
    raise _invalid(name, "a number", v)


def number_range(lo: float, hi: float, as_float: bool = False) -> Check:
    """Checker for a number within [lo, hi]; out of range -> out_of_range."""

    def check(name: str, v: Any) -> int | float:
        n = _number(name, v)
        if not lo <= n <= hi:
            raise ValidationError(
                "out_of_range", f"field {name!r} must be between {lo:g} and {hi:g}; got {_show(n)}"
            )
        return float(n) if as_float else n

    SHAPES[check] = Shape("number", lo=lo, hi=hi, as_float=as_float)
    return check


def check_csat(name: str, v: Any) -> int:
    """Survey score: an integer 1..5 (4.0 accepted as 4); 4.5 or 6 -> out_of_range."""
    n = _number(name, v)
    if not (1 <= n <= 5 and (type(n) is int or float(n).is_integer())):
        raise ValidationError(
            "out_of_range", f"field {name!r} must be an integer from 1 to 5; got {_show(n)}"
        )
    return int(n)


def check_bool(name: str, v: Any) -> bool:
    """JSON true/false only: 0/1 or "true" are not booleans."""
    if v is True or v is False:
        return v
    raise _invalid(name, "a boolean (true or false)", v)


SHAPES.update({check_ms: Shape("ms"), check_csat: Shape("csat"), check_bool: Shape("bool")})


# --- the contract, as data -----------------------------------------------------------------

REQUIRED, OPTIONAL, IGNORED = "required", "optional", "ignored"

Field = tuple[str, bool, Check, Any]  # (name, required, checker, default when absent)


def _req(name: str, check: Check) -> Field:
    return (name, True, check, _NO_DEFAULT)


def _opt(name: str, check: Check, default: Any = _NO_DEFAULT) -> Field:
    return (name, False, check, default)


_SCORE = number_range(0, 100)
_MONEY = number_range(0, MAX_ORDER_VALUE)
_MOS = number_range(1.0, 5.0, as_float=True)

# type -> (agent_id rule, campaign_id required?, extra fields in contract order)
SPECS: dict[str, tuple[str, bool, tuple[Field, ...]]] = {
    "call.dialed": (
        OPTIONAL,
        True,
        (
            _opt("list_id", check_str),
            _opt("lead_id", check_str),
            _opt("caller_id", check_str),
            _opt("dest_region", check_str),
            _opt("mode", enum(DIAL_MODE_ORDER)),
            _opt("variant", check_code),
        ),
    ),
    "call.offered": (IGNORED, True, (_opt("queue_id", check_str),)),
    "call.answered": (
        IGNORED,
        True,
        (_req("answered_by", enum(ANSWERED_BY_ORDER)), _opt("ring_ms", check_ms)),
    ),
    "call.unanswered": (
        IGNORED,
        True,
        (_req("reason", enum(UNANSWERED_REASON_ORDER)), _opt("ring_ms", check_ms)),
    ),
    "call.connected": (
        REQUIRED,
        True,
        (_opt("team_id", check_str), _req("wait_ms", check_ms)),
    ),
    "call.abandoned": (
        IGNORED,
        True,
        (_req("wait_ms", check_ms), _req("reason", enum(ABANDON_REASON_ORDER))),
    ),
    "call.ended": (
        OPTIONAL,
        True,
        (
            _req("talk_ms", check_ms),
            _opt("hold_ms", check_ms, 0),
            _opt("hangup_by", enum(HANGUP_BY_ORDER)),
        ),
    ),
    "call.wrapup": (
        REQUIRED,
        True,
        (
            _req("wrapup_ms", check_ms),
            _req("disposition", enum(DISPOSITION_ORDER, "unknown_disposition")),
            _opt("disposition_code", check_code),
            _opt("order_value", _MONEY),
            _opt("lead_score", _SCORE),
            _opt("intent", enum(INTENT_ORDER)),
            _opt("resolved", check_bool),
        ),
    ),
    "call.survey": (OPTIONAL, True, (_req("csat", check_csat),)),
    "call.complaint": (OPTIONAL, True, (_opt("category", check_str),)),
    "call.qa": (REQUIRED, True, (_req("score", _SCORE), _req("compliant", check_bool))),
    "call.quality": (IGNORED, True, (_opt("mos", _MOS), _req("dropped", check_bool))),
    "call.callback": (IGNORED, True, (_opt("lead_id", check_str),)),
    "agent.state": (
        REQUIRED,
        False,
        (
            _req("state", enum(AGENT_STATE_ORDER)),
            _opt("reason", check_str),
            _opt("team_id", check_str),
        ),
    ),
}
assert set(SPECS) == EVENT_TYPES
_CALL_TYPES = frozenset(CALL_TYPE_ORDER)
_TYPE_LISTING = ", ".join(SPECS)


# --- entry points --------------------------------------------------------------------------


def validate_reference(raw: bytes, *, now_ms: int, max_age_ms: int) -> Event | Rejection:
    """Parse and validate one raw Kafka message value. Never raises.

    The reference: `stream.contract.validate` (the fast path in `fast.py`) gives the same
    answer for every input, and asks this function whenever the message is not well-formed.

    `now_ms` is the service clock (epoch ms); `max_age_ms` the longest retention (older events
    could not be counted anywhere, so they are rejected as `too_old`).
    """
    if type(raw) is not bytes and not isinstance(raw, (bytes, bytearray, memoryview)):
        if raw is None:
            return Rejection("malformed_json", "message has no value (null/tombstone)")
        if not isinstance(raw, str):
            return Rejection("malformed_json", f"message value must be bytes; got {type(raw).__name__}")
        raw = raw.encode("utf-8", "surrogatepass")
    if type(raw) is not bytes:
        raw = bytes(raw)
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(
            "oversize",
            f"message is {len(raw)} bytes; the maximum is {MAX_MESSAGE_BYTES} bytes (64 KiB)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Rejection("malformed_json", f"message is not valid UTF-8: {e.reason} at byte {e.start}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return Rejection("malformed_json", f"message is not valid JSON: {e.msg} at char {e.pos}")
    except (ValueError, RecursionError) as e:  # e.g. too many digits, nesting too deep
        return Rejection("malformed_json", f"message is not valid JSON: {str(e)[:120]}")
    if type(obj) is not dict:
        return Rejection("not_an_object", f"message must be a JSON object; got {_json_kind(obj)}")
    return validate_dict(obj, now_ms=now_ms, max_age_ms=max_age_ms)


def validate_dict(obj: Mapping[str, Any], *, now_ms: int, max_age_ms: int) -> Event | Rejection:
    """Validate an already-decoded JSON object (e.g. from the simulator or a test). Never raises."""
    if not isinstance(obj, Mapping):
        return Rejection("not_an_object", f"event must be a JSON object; got {_json_kind(obj)}")
    try:
        return _validate(obj, now_ms, max_age_ms)
    except ValidationError as e:
        return Rejection(e.reason, e.message, _peek_str(obj, "event_id"), _peek_str(obj, "type"))
    except Exception as e:  # a bug here must not stop the worker; tests assert this never happens
        return Rejection(
            "invalid_field",
            f"internal validation error: {type(e).__name__}: {str(e)[:120]}",
            _peek_str(obj, "event_id"),
            _peek_str(obj, "type"),
        )


def _validate(obj: Mapping[str, Any], now_ms: int, max_age_ms: int) -> Event:
    get = obj.get
    v = get("v")
    if v is not None and v != CONTRACT_VERSION:
        if v is True or v is False or not (
            type(v) is int or (isinstance(v, float) and math.isfinite(v) and v.is_integer())
        ):
            raise _invalid("v", "an integer contract version", v)
        raise ValidationError(
            "unsupported_version", f"contract version {_show(v)} is not supported; supported: 1"
        )
    if v is True or v is False:  # True == 1 in Python
        raise _invalid("v", "an integer contract version", v)

    event_id = _required(get, "event_id", check_str, "every event")
    etype = get("type")
    if etype is None:
        raise ValidationError("missing_field", "field 'type' is required on every event")
    etype = check_str("type", etype)
    spec = SPECS.get(etype)
    if spec is None:
        raise ValidationError(
            "unknown_type", f"field 'type' must be one of {_TYPE_LISTING}; got {_show(etype)}"
        )
    agent_rule, campaign_required, extra = spec

    raw_ts = get("ts")
    if raw_ts is None:
        raise ValidationError("missing_field", "field 'ts' is required on every event")
    try:
        ts = parse_ts(raw_ts)
    except ValueError:
        raise _invalid(
            "ts",
            "an RFC 3339 date-time with offset (e.g. 2026-11-20T09:15:02.120Z) or integer epoch milliseconds",
            raw_ts,
        ) from None

    where = f"{etype} events"
    if etype in _CALL_TYPES:
        call_id: str | None = _required(get, "call_id", check_str, where)
    else:
        call_id = None
    if campaign_required:
        campaign_id: str | None = _required(get, "campaign_id", check_str, where)
    else:
        c = get("campaign_id")
        campaign_id = None if c is None or _blank(c) else check_str("campaign_id", c)
    if agent_rule is REQUIRED:
        agent_id: str | None = _required(get, "agent_id", check_str, where)
    elif agent_rule is OPTIONAL:
        a = get("agent_id")
        agent_id = None if a is None or _blank(a) else check_str("agent_id", a)
    else:
        agent_id = None

    fields: dict[str, Any] = {}
    for name, required, check, default in extra:
        val = get(name)
        if val is None or (not required and check in _TEXT_CHECKS and _blank(val)):
            if required:
                raise ValidationError("missing_field", f"field {name!r} is required on {where}")
            if default is not _NO_DEFAULT:
                fields[name] = default
            continue
        fields[name] = check(name, val)

    if ts > now_ms + MAX_FUTURE_MS:
        raise ValidationError(
            "future_timestamp",
            f"ts is {(ts - now_ms) / 1000:.3f} s ahead of the service clock; at most "
            f"{MAX_FUTURE_MS // 1000} s ahead is accepted",
        )
    if ts < now_ms - max_age_ms:
        raise ValidationError(
            "too_old",
            f"ts is {(now_ms - ts) / 1000:.3f} s old; events older than the retention of "
            f"{max_age_ms // 1000} s cannot be counted",
        )
    return Event(event_id, etype, ts, campaign_id, call_id, agent_id, fields)


def _required(get: Callable[[str], Any], name: str, check: Check, where: str) -> Any:
    val = get(name)
    if val is None:
        raise ValidationError("missing_field", f"field {name!r} is required on {where}")
    return check(name, val)


def _peek_str(obj: Mapping[str, Any], name: str) -> str | None:
    """The trimmed value of `name` for the rejection record, if it is a usable contract string."""
    try:
        return check_str(name, obj.get(name))
    except Exception:
        return None


def _json_kind(v: object) -> str:
    if isinstance(v, list):
        return "an array"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    return type(v).__name__
