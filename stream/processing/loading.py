"""Where a batch's entity states and applied offsets come from: the batch still committing
ahead of it, this process's cache of what it committed, or Redis, in that order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.processing.state_cache import StateCache
from stream.store.commit import CommitBatch
from stream.store.layout import PartitionProgress
from stream.store.redis_store import Store

Decode = Callable[[dict[str, Any]], Any]
"""Builds a state object (`CallState`, `AgentState`) from its stored JSON."""


class State(Protocol):
    def clone(self) -> Any: ...


@dataclass
class StoreView:
    """What the store holds for the keys one batch writes, once that batch is committed."""

    offsets: dict[str, int] = field(default_factory=dict)  # tp → applied offset
    states: dict[str, tuple[int, State | None, int]] = field(default_factory=dict)
    """key → (version, state, size of its JSON)"""
    watermarks: dict[str, PartitionProgress] = field(default_factory=dict)
    """tp → progress of the source partitions the batch applied (`horizon.py`)."""
    records: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    """agent → the two shares of its record the batch writes (JSON; None: not written)."""
    encoded: dict[str, str | None] = field(default_factory=dict)
    """key → the JSON its state is written as (None: deleted), to compare two views (`holds`)."""

    @classmethod
    def after(cls, batch: CommitBatch, states: dict[str, State]) -> StoreView:
        """The store once `batch` is committed; `states`: the objects its entity writes encode."""
        return cls({tp: new for tp, _, new in batch.offsets},
                   {e.key: ((e.version + 1, states[e.key], len(e.json)) if e.json is not None
                            else (0, None, 0)) for e in batch.entities},
                   dict(batch.watermarks),
                   {a: (batch.agent_records.get(a), batch.agent_call_records.get(a))
                    for a in {*batch.agent_records, *batch.agent_call_records}},
                   {e.key: e.json for e in batch.entities})

    def holds(self, other: StoreView, consulted: Consulted) -> bool:
        """Whether a batch prepared on this view, consulting it for `consulted` only, would
        have been prepared alike on `other` (the same batch redone: `pipelining.py`): every
        entry it consulted, present or absent, is the same in both (an entity's version and
        JSON, an offset, an agent's record), and so are the watermarks, which it takes whole."""
        if self.watermarks != other.watermarks:
            return False
        if any(self.offsets.get(tp) != other.offsets.get(tp) for tp in consulted.tps):
            return False
        if any(self.records.get(a) != other.records.get(a) for a in consulted.agents):
            return False
        for key in consulted.keys:
            mine, theirs = self.states.get(key), other.states.get(key)
            if mine is None or theirs is None:
                if mine is not theirs:  # written by one of them only
                    return False
            elif mine[0] != theirs[0] or self.encoded.get(key) != other.encoded.get(key):
                return False
        return True


@dataclass
class Consulted:
    """What a batch prepared ahead asked the view it was prepared on for (`Loader.load`,
    `agent_parts.assemble`), found there or not: its partitions' offsets, its call and agent
    keys, its agents' records (and all watermarks)."""

    tps: list[str]
    keys: list[str]
    agents: list[str]


class Loader:
    def __init__(self, store: Store, cache_bytes: int) -> None:
        self.store = store
        self.cache = StateCache(cache_bytes)

    async def load(self, view: StoreView, tps: Iterable[str], keys: Iterable[str],
                   decode: Decode) -> tuple[dict[str, int], dict[str, tuple[int, Any]]]:
        """Applied offsets of `tps` and (version, state or None) of `keys`, as the store will
        hold them once `view`'s batch is committed. States are the caller's to change."""
        tps, keys = list(tps), list(keys)
        cached = {k: hit for k in keys if k not in view.states
                  for hit in [self.cache.get(k)] if hit is not None}
        unread = [k for k in keys if k not in view.states and k not in cached]
        offsets, raw, versions = await self.store.load(
            [tp for tp in tps if tp not in view.offsets], unread, check=cached)
        stale = [k for k, (v, _) in cached.items() if versions[k] != v]
        if stale:  # changed by another worker since this process committed it
            for k in stale:
                self.cache.drop(k)
                del cached[k]
            raw.update((await self.store.load((), stale))[1])
        offsets.update({tp: view.offsets[tp] for tp in tps if tp in view.offsets})
        states: dict[str, tuple[int, Any]] = {}
        for k in keys:
            if k in view.states:
                version, state, _ = view.states[k]
                states[k] = (version, state.clone() if state is not None else None)
            elif k in cached:
                version, state = cached[k]
                states[k] = (version, state.clone())
            else:
                version, data = raw[k]
                states[k] = (version, decode(data) if data else None)
        return offsets, states

    def committed(self, view: StoreView) -> None:
        """`view`'s batch is committed: its states are what the store holds now."""
        for key, (version, state, size) in view.states.items():
            if state is None:
                self.cache.drop(key)
            else:
                self.cache.put(key, version, state, size)

    def forget(self) -> None:
        """A commit conflicted or its outcome is unknown: trust nothing held."""
        self.cache.clear()
