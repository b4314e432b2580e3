"""Event time: RFC 3339 strings (with an offset) or integer epoch milliseconds, to int epoch ms.

`datetime.fromisoformat` is fast but accepts far more than RFC 3339 (dates without time, week
dates, `+0800`, commas, naive times), so one anchored pattern checks the exact RFC 3339 shape
first and `fromisoformat` then does the calendar arithmetic and range checks.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# RFC 3339 `date-time`: full-date "T" full-time, time-offset mandatory ("Z" or +hh:mm / -hh:mm);
# "T" and "Z" may be lower case (RFC 3339 section 5.6 note). ASCII digits only.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_ts(value: object) -> int:
    """Return epoch milliseconds (UTC) for an RFC 3339 string with offset or an integer epoch ms.

    Fractional seconds of any precision are truncated (floored) to the millisecond. A string
    without an offset is invalid: a naive time means nothing across time zones. Surrounding
    whitespace of a string is trimmed (all contract strings are). A JSON float with an integral
    value (1763630102120.0) counts as an integer. A leap second (`:60`) is read as POSIX does,
    i.e. as the first millisecond of the next second. Booleans are not integers.
    Raises ValueError for anything else.
    """
    # exact type tests (not isinstance) first: the common cases, and a bool is not an int
    if type(value) is int:
        return value
    if type(value) is str:
        return _parse_rfc3339(value.strip())
    if type(value) is float:
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ValueError(f"epoch milliseconds must be an integer, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"not a timestamp: {type(value).__name__}")


def _parse_rfc3339(s: str) -> int:
    if _RFC3339.fullmatch(s) is None:
        raise ValueError(f"not an RFC 3339 date-time with offset: {s[:64]!r}")
    leap = 0
    if s[10] == "t" or s[-1] == "z":  # rare: fromisoformat wants upper case
        s = s[:10] + "T" + s[11:-1] + s[-1].upper()
    if s[17] == "6":  # ":60", a leap second (the pattern already limits it to 2 digits)
        if s[18] != "0":
            raise ValueError(f"second out of range: {s[:64]!r}")
        s = s[:17] + "59" + s[19:]
        leap = 1000
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not a valid calendar date-time: {s[:64]!r}") from None
    return (dt - _EPOCH) // _ONE_MS + leap


def format_ts(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. "2026-11-20T09:15:02.120Z" (the canonical output form)."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{ms % 1000:03d}Z"
    )
