"""Event timestamps: what the contract's formatter writes parses back to the same millisecond, in
any offset the contract allows, and the simulator's fast formatter writes the same text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from stream.contract import format_ts, parse_ts
from stream.sim import TsFormatter

# 1970 .. 2100, in ms
instants = st.integers(min_value=0, max_value=4_102_444_800_000)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


@given(ms=instants)
def test_the_canonical_form_parses_back(ms: int) -> None:
    assert parse_ts(format_ts(ms)) == ms


@given(ms=instants, offset_min=offsets, digits=st.integers(min_value=0, max_value=9))
def test_any_offset_and_precision_parse_to_the_same_millisecond(ms: int, offset_min: int, digits: int) -> None:
    local = datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=(ms % 1000) * 1000).astimezone(
        timezone(timedelta(minutes=offset_min)))
    sign = "-" if offset_min < 0 else "+"
    offset = f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    fraction = f"{ms % 1000:03d}".ljust(digits, "7")[:digits]  # extra digits below 1 ms are truncated
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + offset
    expected = ms if digits >= 3 else ms - ms % 10 ** (3 - digits)
    assert parse_ts(text) == expected, text


@given(ms=instants)
def test_epoch_milliseconds_parse_as_themselves(ms: int) -> None:
    assert parse_ts(ms) == ms
    assert parse_ts(float(ms)) == ms


@given(ms=instants)
def test_the_simulators_formatter_writes_the_canonical_form(ms: int) -> None:
    assert TsFormatter().utc(ms) == format_ts(ms)
