"""Counter deltas: merging is adding, and a batch merged with its negation writes nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.state.deltas import Deltas

scopes = st.sampled_from(["center", "campaign:solar", "team:north", "agent:a-1", "agent:a-2"])
counters = st.sampled_from(["dialed", "connected", "talk_ms", "revenue", "abandoned"])
whole = st.integers(min_value=-10_000, max_value=10_000)
# quarters: exact in binary, so sums in any order are equal and the properties can be exact
money = st.integers(min_value=-40_000_000, max_value=40_000_000).map(lambda quarters: quarters / 4)
increments = st.lists(
    st.tuples(st.lists(scopes, min_size=1, max_size=3, unique=True), st.integers(0, 5).map(lambda m: m * 60_000),
              st.dictionaries(counters, st.one_of(whole, money), max_size=4)),
    max_size=30,
)


def build(steps: list[tuple[list[str], int, dict[str, float]]]) -> Deltas:
    d = Deltas()
    for scope_list, minute, values in steps:
        d.add(scope_list, minute, values)
    return d


@given(steps=increments)
def test_a_batch_merged_with_its_negation_is_empty(steps: list[tuple[list[str], int, dict[str, float]]]) -> None:
    batch = build(steps)
    undo = Deltas()
    undo.merge(batch)
    undo.merge(batch, sign=-1)
    assert len(undo) == 0 and undo.grouped() == {} and undo.items() == []


@given(steps=increments)
def test_adding_with_sign_minus_one_undoes_adding(steps: list[tuple[list[str], int, dict[str, float]]]) -> None:
    d = build(steps)
    for scope_list, minute, values in steps:
        d.add(scope_list, minute, values, sign=-1)
    assert len(d) == 0 and d.grouped() == {}


@given(first=increments, second=increments)
def test_merging_two_batches_is_adding_both(first: list[tuple[list[str], int, dict[str, float]]],
                                            second: list[tuple[list[str], int, dict[str, float]]]) -> None:
    merged = build(first)
    merged.merge(build(second))
    assert merged.grouped() == build(first + second).grouped()


@given(steps=increments)
def test_zero_sums_vanish(steps: list[tuple[list[str], int, dict[str, float]]]) -> None:
    d = build(steps)
    assert all(v != 0 for _, v in d.items())
    assert len(d) == len(d.items()) == sum(len(g) for g in d.grouped().values())
