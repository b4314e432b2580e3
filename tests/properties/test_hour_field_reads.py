"""The window-sums script's shortcuts (the hour field for the first k minutes of an hour, when no
later minute of it has been written; the day hash for `today`, when the scope's index says
nothing later has data) answer what summing the minutes answers, on randomized stores: late
events, retractions, events in the future (minutes, and hours), team moves, redelivered batches,
and minute hashes written before the newest-minute keys or the scope indexes existed (an
upgrade)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from stream.kpi.windows import HOUR_MS, MINUTE_MS, Range, resolve_window
from stream.readers import sums
from stream.readers.sums import window_sums
from stream.state.batch import TeamMove
from stream.store.commit import CommitBatch
from stream.store.redis_store import Store

_HOUR = int(time.time() * 1000) // HOUR_MS * HOUR_MS - HOUR_MS
NOW = _HOUR + 37 * MINUTE_MS + 12_345
"""37 minutes into the last hour: near the real clock, since the buckets expire by it."""
TZ = ZoneInfo("America/New_York")
COUNTERS = ("dialed", "connected", "talk_ms", "revenue")  # integer and float counters
AGENTS, TEAMS = ("a1", "a2"), ("t1", "t2")
_stores = itertools.count()

minute = st.one_of(st.integers(min_value=-37, max_value=10), st.integers(min_value=-150, max_value=-38),
                   st.integers(min_value=11, max_value=900)).map(lambda m: NOW - NOW % MINUTE_MS + m * MINUTE_MS)
"""Mostly this hour and the two before; some later in the day or the next (a clock ahead): what
the day hash holds beyond `today`, which its path must notice."""
# dyadic values: their sums are exact in any order, so the reads must agree to the bit
value = st.one_of(st.integers(-3, 5), st.integers(-40, 40).map(lambda q: q / 4))
deltas = st.dictionaries(st.sampled_from(COUNTERS), value, min_size=1, max_size=4)
scope = st.sampled_from([f"agent:{a}" for a in AGENTS] + [f"team:{t}" for t in TEAMS] + ["center:"])
batch = st.one_of(
    st.dictionaries(st.tuples(scope, minute), deltas, min_size=1, max_size=6).map(lambda c: ("counters", c)),
    st.tuples(st.sampled_from(AGENTS), st.sampled_from((None, *TEAMS)), st.sampled_from(TEAMS))
    .map(lambda m: ("move", TeamMove(*m))),
    st.just(("forget", None)),  # the newest-minute keys so far vanish: written by the old code
    st.just(("unindexed", None)),  # the scope indexes vanish: a store written before them
)


class Runner:
    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = asyncio.Runner()

    def run(self, steps: list[tuple[str, object]], ends: list[int]) -> tuple[dict, dict, dict]:
        return self.runner.run(self._run(steps, ends))

    async def _run(self, steps: list[tuple[str, object]], ends: list[int]) -> tuple[dict, dict, dict]:
        store = Store(self.url, prefix=f"p{next(_stores)}:", tz=TZ)
        try:
            for kind, x in steps:
                if kind == "counters":
                    b = CommitBatch(counters=x, notify=False)  # type: ignore[arg-type]
                    await store.commit(b, NOW)
                    if len(x) % 2:  # type: ignore[arg-type]
                        await store.commit(b, NOW)  # applied twice, as a redelivery without offsets would
                elif kind == "move":
                    await store.commit(CommitBatch(team_moves=[x], notify=False), NOW)  # type: ignore[list-item]
                elif kind == "unindexed":
                    await store.redis.delete(*(store.layout.bound_of(k)[0] for k in ("agent:", "team:", "center")))
                else:
                    stale = [k async for k in store.redis.scan_iter(f"{store.layout.prefix}mx:*")]
                    if stale:
                        await store.redis.delete(*stale)
            scopes = [f"agent:{a}" for a in AGENTS] + [f"team:{t}" for t in TEAMS] + ["center:"]
            ranges = {w: resolve_window(w, NOW, TZ) for w in ("today", "5m", "15m", "1h")}
            hour = NOW - NOW % HOUR_MS
            ranges |= {f"to{e}": Range(hour - 2 * HOUR_MS, hour + e * MINUTE_MS) for e in ends}
            ranges["3d"] = Range(hour - 72 * HOUR_MS, hour + ends[0] * MINUTE_MS)  # day buckets too
            alone = {w: (await window_sums(store, scopes, {w: r}, COUNTERS)) for w, r in ranges.items()}
            together = await window_sums(store, scopes, ranges, COUNTERS)
            minutes = {w: await store._bucket_counters(scopes, r) for w, r in ranges.items()}  # every minute summed
            return alone, together, minutes
        finally:
            await store.close()

    def close(self) -> None:
        self.runner.close()


@pytest.fixture(scope="module")
def runner(redis_url: str) -> Iterator[Runner]:
    r = Runner(redis_url)
    try:
        yield r
    finally:
        r.close()


def _m(k: int) -> int:
    """The k-th minute from NOW's, as the `minute` strategy draws them."""
    return NOW - NOW % MINUTE_MS + k * MINUTE_MS


@settings(max_examples=200, deadline=None)
# found by this test: a move takes the agent's minutes (one stamped ahead) out of the old team too,
# so the old team's newest minute must be raised as well, or its `today` read the day hash
@example(steps=[("unindexed", None),
                ("counters", {("agent:a1", _m(3)): {"dialed": 4}, ("agent:a1", _m(0)): {"dialed": 0},
                              ("team:t2", _m(0)): {"dialed": 0, "connected": 0, "talk_ms": 0, "revenue": 0}}),
                ("move", TeamMove("a1", "t2", "t1"))], ends=[1])
@given(steps=st.lists(batch, min_size=1, max_size=8),
       ends=st.lists(st.integers(min_value=1, max_value=47), min_size=1, max_size=3, unique=True))
def test_the_hour_field_read_is_the_minute_sum(runner: Runner, steps: list[tuple[str, object]],
                                               ends: list[int]) -> None:
    last_unindexed = max((i for i, (kind, _) in enumerate(steps) if kind == "unindexed"), default=-1)
    # a store written before the indexes: its data lies before the upgrade's clock (an event stamped
    # ahead of it by the contract's skew could make a scope's first new score too low for that long)
    assume(not any(kind == "counters" and any(m > NOW for _, m in x)  # type: ignore[attr-defined]
                   for kind, x in steps[:last_unindexed]))
    alone, together, minutes = runner.run(steps, ends)
    for w, by_scope in minutes.items():
        for s, sums_of in by_scope.items():
            want = {c: sums_of.get(c, 0.0) for c in COUNTERS}
            assert alone[w][s][w] == want, (w, s)
            assert together[s][w] == want, (w, s)


def test_the_shortcut_is_planned_for_today() -> None:
    """(Else the property above would hold trivially.) Today at 37 minutes past: the day's hour
    hash is read with this hour's index too, in place of the first 38 minutes."""
    buckets, plan, _ = sums._bucket_plan({"today": resolve_window("today", NOW, TZ)}, COUNTERS, TZ)
    ((g, short),) = plan["short"].items()
    assert buckets[int(g) - 1] == ("m", _HOUR) and short["k"] == 38
    (alt,) = plan["alt"]
    assert [str((_HOUR % 86_400_000) // HOUR_MS), [0]] in alt


def test_the_day_path_is_taken_for_today_alone() -> None:
    """(Else the property above would not test it.) `today` alone is a day's window; with other
    windows, or from another start, it is not."""
    today = resolve_window("today", NOW, TZ)
    assert sums._day_of({"today": today}, TZ) is not None
    assert sums._day_of({"today": today, "1h": resolve_window("1h", NOW, TZ)}, TZ) is None
    assert sums._day_of({"1h": resolve_window("1h", NOW, TZ)}, TZ) is None


def test_today_is_read_from_the_day_hash(redis_url: str) -> None:
    """A scope with nothing after now: its `today` comes from the day hash alone (the minute and
    hour hashes are emptied here and the answer stays), an agent's, a team's, the center's; a
    team's that got an agent's history stamped ahead of the commit's clock by a team move does
    not (the move raised the team's newest minute to the agent's: the minutes are summed)."""
    async def run() -> tuple[dict, dict]:
        store = Store(redis_url, prefix=f"p{next(_stores)}:", tz=TZ)
        try:
            minute0 = NOW - NOW % MINUTE_MS
            counters: dict[tuple[str, int], dict[str, float]] = {(s, minute0 - m * MINUTE_MS): {"dialed": 2, "talk_ms": 7}
                        for s in ("agent:a1", "team:t1", "center") for m in (0, 5, 40)}
            counters[("agent:a2", minute0 + 3 * MINUTE_MS)] = {"dialed": 1}  # stamped ahead of now
            await store.commit(CommitBatch(counters=counters, notify=False), NOW)
            await store.commit(CommitBatch(team_moves=[TeamMove("a2", None, "t2")], notify=False), NOW)
            scopes = ["agent:a1", "team:t1", "center", "team:t2"]
            today = {"today": resolve_window("today", NOW, TZ)}
            before = await window_sums(store, scopes, today, COUNTERS)
            hashes = [k async for k in store.redis.scan_iter(f"{store.layout.prefix}[mh]:*")]
            await store.redis.delete(*hashes)
            return before, await window_sums(store, scopes, today, COUNTERS)
        finally:
            await store.close()
    before, after = asyncio.run(run())
    assert before["agent:a1"]["today"]["dialed"] == before["team:t1"]["today"]["dialed"] > 0
    assert before["center"]["today"]["dialed"] > 0
    for s in ("agent:a1", "team:t1", "center"):
        assert after[s] == before[s], s
    assert before["team:t2"]["today"]["dialed"] == 0  # its minute is after now: not in today
    assert after["team:t2"]["today"]["dialed"] == 0
