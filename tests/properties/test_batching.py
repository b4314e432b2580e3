"""A simulated stream's totals do not depend on how it is cut into batches: every counter of
every scope (and every minute bucket) after the stream in one batch equals the result of any
other cut, with every delivery fault on (duplicates, reordering, late and invalid events).
`tests/unit/test_call_gaps.py` checks the same for call gaps against the reference calculator,
over hand-shaped agent days; this runs the simulator's center through `stream.state.batch`."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contract import Event, validate
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.sim import FaultConfig, SimConfig, generate
from tests.unit.test_processing import NOW, FakeStore

HOUR = 3_600_000


@cache
def simulated(seed: int) -> tuple[Event, ...]:
    """The valid events of a short simulated stretch, in delivery order (faults on)."""
    cfg = SimConfig(seed=seed, agents=4, hours=0.5, start_ms=NOW - HOUR, teams_of=2,
                    faults=FaultConfig.all_on())
    checked = (validate(d.value, now_ms=NOW, max_age_ms=MAX_EVENT_AGE_MS) for d in generate(cfg))
    return tuple(e for e in checked if isinstance(e, Event))


def totals(events: tuple[Event, ...], cuts: list[int]) -> FakeStore:
    store = FakeStore()
    start = 0
    for cut in [*sorted(set(cuts)), len(events)]:
        if cut > start:
            store.run(list(events[start:cut]))
            start = cut
    return store


@cache
def in_one_batch(seed: int) -> FakeStore:
    return totals(simulated(seed), [])


@st.composite
def cut_streams(draw: st.DrawFn) -> tuple[int, list[int]]:
    seed = draw(st.integers(0, 7))
    n = len(simulated(seed))
    return seed, draw(st.lists(st.integers(0, n), max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut_streams())
def test_every_counter_is_the_same_however_the_stream_is_cut(case: tuple[int, list[int]]) -> None:
    seed, cuts = case
    expected = in_one_batch(seed)
    got = totals(simulated(seed), cuts)
    assert got.totals() == expected.totals()
    assert got.bucketed() == expected.bucketed()


def test_the_stream_is_rich_enough_to_mean_something() -> None:
    t = in_one_batch(0).totals()
    names = {name for _, name in t}
    assert {"dialed", "answered", "connected", "talk_ms", "staffed_ms", "abandoned"} <= names, names
    assert len(simulated(0)) > 300 and len({scope for scope, _ in t}) > 10
