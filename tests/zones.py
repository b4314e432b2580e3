"""Time zones for tests: a zone whose DST changes fall where a test needs them.

A test against a real Redis has to write buckets near the real clock (a bucket whose expiry is
past is deleted at once), so a fixed date with a known DST change cannot be used; instead the
zone is made for the run: a TZif file with no transitions and a POSIX TZ rule (RFC 8536) that
puts the changes on the given dates.
"""
from __future__ import annotations

import io
import struct
from datetime import date
from zoneinfo import ZoneInfo


def _julian(d: date) -> int:
    """POSIX `Jn`: day of the year 1..365, February 29 never counted."""
    n = d.timetuple().tm_yday
    leap = d.year % 4 == 0 and (d.year % 100 != 0 or d.year % 400 == 0)
    return n - 1 if leap and n > 59 else n


def dst_zone(dst_starts: date, dst_ends: date, key: str = "Test/DST") -> ZoneInfo:
    """UTC+1 ("XST"), UTC+2 ("XDT") from 02:00 local of `dst_starts` to 03:00 local of
    `dst_ends` (a 23-hour and a 25-hour day), every year."""
    rule = f"XST-1XDT,J{_julian(dst_starts)}/2,J{_julian(dst_ends)}/3"

    # counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt; one local time type
    header = b"TZif2" + b"\0" * 15 + struct.pack(">6l", 0, 0, 0, 0, 1, 4)
    ttinfo = struct.pack(">lBB", 3600, 0, 0) + b"XST\0"
    data = header + ttinfo + header + ttinfo + b"\n" + rule.encode() + b"\n"  # v1 block, v2 block
    return ZoneInfo.from_file(io.BytesIO(data), key=key)
