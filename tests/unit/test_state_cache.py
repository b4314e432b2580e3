"""The cache of committed entity states: bounded by bytes, least recently used out first, and
states handed out as clones that processing can change without touching what is cached."""

from __future__ import annotations

from stream.kpi.contributions import Thresholds
from stream.processing.state_cache import StateCache
from stream.state.agent_state import AgentState
from stream.state.call_state import CallState
from stream.state.deltas import Deltas
from tests.unit.test_processing import EVENTS


def test_budget_evicts_least_recently_used() -> None:
    cache = StateCache(max_bytes=100)
    cache.put("a", 1, "A", 40)
    cache.put("b", 1, "B", 40)
    assert cache.get("a") == (1, "A")  # a is now the most recently used
    cache.put("c", 1, "C", 40)
    assert "b" not in cache and cache.get("a") == (1, "A") and cache.get("c") == (1, "C")
    cache.put("a", 2, "A2", 50)  # replacing counts the new size only
    assert cache.get("a") == (2, "A2") and len(cache) == 2


def test_a_state_bigger_than_the_budget_is_not_kept() -> None:
    cache = StateCache(max_bytes=10)
    cache.put("a", 1, "A", 11)
    assert cache.get("a") is None and len(cache) == 0


def test_drop_and_clear() -> None:
    cache = StateCache(max_bytes=100)
    cache.put("a", 1, "A", 10)
    cache.put("b", 1, "B", 10)
    cache.drop("a")
    assert "a" not in cache and "b" in cache
    cache.clear()
    assert len(cache) == 0
    cache.put("c", 1, "C", 100)  # the byte count was reset with the entries
    assert "c" in cache


def test_processing_a_clone_leaves_the_original_as_it_was() -> None:
    call = CallState()
    call.apply(EVENTS[:2], Thresholds(), Deltas())
    copy = call.clone()
    copy.apply(EVENTS[2:4], Thresholds(), Deltas())
    assert [e.event_id for e in call.events] == ["x1", "x2"] and not call.has("x3")
    assert copy.attrs().agent == "a1" and call.attrs().agent is None

    agent = AgentState()
    agent.add_points("a1", [EVENTS[12]], Deltas())
    before = agent.to_json()
    twin = agent.clone()
    twin.add_points("a1", [EVENTS[13], EVENTS[14]], Deltas())
    twin.calls.pop("X", None)
    twin.calls["Y"] = agent.calls.get("Y")  # type: ignore[assignment]
    assert agent.to_json() == before and len(agent.points) == 1 and len(twin.points) == 3
    assert "Y" not in agent.calls
