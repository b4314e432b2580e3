"""The commit's flat summing of counter deltas equals summing group by group (`_Increments.add`,
the plain form): the same hashes, fields and sums, the same expiries and scope index."""

from __future__ import annotations

import random

from stream.kpi.catalog import FLOAT_COUNTERS
from stream.store.commit import _Increments, summed_increments
from stream.store.layout import (Layout, hour_field, hour_key_expiry, minute_field,
                                 minute_key_expiry)

MIN = 60_000


def plain(counters, layout):
    """Group by group, as commit.py summed before the flat form."""
    inc, expire, scopes = _Increments(), {}, {}
    for (scope, minute), deltas in counters.items():
        named = [(n, v) for n, v in deltas.items() if v or n in FLOAT_COUNTERS]
        if not named:
            continue
        mk, hk = layout.minute_key(scope, minute), layout.hour_key(scope, minute)
        mp, hp = minute_field(minute, ""), hour_field(minute, "")
        inc.add(mk, [(mp + n, n, v) for n, v in named])
        inc.add(hk, [(hp + n, n, v) for n, v in named])
        inc.add(layout.total_key(scope), [(n, n, v) for n, v in named]
                + [(f"retracted:{n}", n, -v) for n, v in named if v < 0])
        expire[mk], expire[hk] = minute_key_expiry(minute), hour_key_expiry(minute)
        kind, _, ident = scope.partition(":")
        if ident:
            scopes[(layout.scopes_key(kind), ident)] = max(
                scopes.get((layout.scopes_key(kind), ident), minute), minute)
    return inc, expire, scopes


def as_sets(inc: _Increments):
    out = {}
    for key, fields, floats in inc.payload():
        out[key] = ({(fields[i], int(fields[i + 1])) for i in range(0, len(fields), 2)},
                    {(floats[i], round(float(floats[i + 1]), 6)) for i in range(0, len(floats), 2)})
    return out


def test_flat_sums_equal_group_by_group_sums() -> None:
    rng = random.Random(3)
    layout = Layout("ck:")
    float_name = sorted(FLOAT_COUNTERS)[0]
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
    for _ in range(50):
        counters = {}
        for _ in range(rng.randint(1, 60)):
            scope = rng.choice(["center", "campaign:c1", "agent:a1", "agent:a2", "team:t1"])
            minute = t0 + rng.randint(0, 180) * MIN
            deltas = counters.setdefault((scope, minute), {})
            for name in rng.sample(["dialed", "handled", "talk_ms", "call_gaps", float_name], 3):
                value = rng.choice([0, 1, 2, -1, 5000, -70])
                deltas[name] = float(value) if name == float_name else value
        expect_inc, expect_expire, expect_scopes = plain(counters, layout)
        expire, scopes = {}, {}
        got = summed_increments(counters, layout, expire, scopes)
        assert as_sets(got) == as_sets(expect_inc)
        assert expire == expect_expire
        assert scopes == expect_scopes
