"""An agent's state as two separately versioned keys (docs/scaling.md#agent-state-in-two-parts).

Calls are keyed by call, so the calls an agent handles arrive on every partition, while its own
`agent.state` events arrive on one: with one key and one version per agent, every worker's
commit raced the agent's state worker on every busy agent. The states part (`agent_key`) and the
calls part (`agent_calls_key`) are read together, joined into one `AgentState` for the batch
step, and written (and version-checked) only where the batch says (`Outcome.agent_parts`).

A store written before the two parts holds the whole state under `agent_key`: it is read as both
parts and written back as two, in one commit that checks its version (so two new workers cannot
both convert it). Workers of the old code must not run on a store new workers have written
(docs/operations.md#upgrading-to-two-part-agent-states).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from stream.state.agent_state import AgentRecord, AgentState, CallsPart, Parts, StatesPart
from stream.state.batch import Outcome
from stream.store.commit import EntityWrite
from stream.store.layout import Layout
from stream.store.redis_store import Store


class AgentKeys(NamedTuple):
    states: str
    calls: str


def agent_keys(layout: Layout, agents: Iterable[str]) -> dict[str, AgentKeys]:
    return {a: AgentKeys(layout.agent_key(a), layout.agent_calls_key(a)) for a in agents}


def decode_part(d: dict[str, Any]) -> StatesPart | CallsPart:
    """Either part from its stored JSON (only the calls part has `ct`)."""
    return CallsPart.from_json(d) if "ct" in d else StatesPart.from_json(d)


class Assembled(NamedTuple):
    agents: dict[str, AgentState | None]
    forced: dict[str, Parts]
    """Agents whose state must be written whole whatever the batch changes: converted from a
    store written before the two parts, or restored from the record (a part had expired)."""


async def assemble(store: Store, keys: dict[str, AgentKeys], loaded: dict[str, tuple[int, Any]],
                   ahead: Mapping[str, tuple[str | None, str | None]] | None = None) -> Assembled:
    """Each agent's state from its two loaded parts, and from its record where a part is gone.

    `ahead`: the records the batch committing ahead of this one writes (`StoreView.records`):
    they are read from Redis before that commit applies (`pipelining.py`)."""
    agents: dict[str, AgentState | None] = {}
    forced: dict[str, Parts] = {}
    missing: list[str] = []
    parts: dict[str, tuple[StatesPart | None, CallsPart | None]] = {}
    for a, k in keys.items():
        states, calls = loaded[k.states][1], loaded[k.calls][1]
        if states is not None and states.legacy_calls is not None:
            if calls is None:
                calls = states.legacy_calls
            states.legacy_calls = None
            forced[a] = Parts.BOTH
        if states is None or calls is None:
            missing.append(a)
        parts[a] = (states, calls)
    records = await store.agent_record_parts(missing)
    written = ahead or {}
    for a in (a for a in missing if a in written):
        stored_states, stored_calls = records.get(a, (None, None))
        new_states, new_calls = written[a]
        records[a] = (json.loads(new_states) if new_states is not None else stored_states,
                      json.loads(new_calls) if new_calls is not None else stored_calls)
    for a, (states, calls) in parts.items():
        record = records.get(a)
        if record is not None and ((states is None and record[0] is not None)
                                   or (calls is None and record[1] is not None)):
            back_states, back_calls = AgentState.returning(AgentRecord.from_parts(*record)).split()
            legacy = record[1] is None  # a whole record: it stands for both parts
            if states is None and (record[0] is not None):
                states = back_states
            if calls is None and (record[1] is not None or legacy):
                calls = back_calls
            forced[a] = Parts.BOTH
        agents[a] = AgentState.join(states, calls)
    return Assembled(agents, forced)


class AgentWrites(NamedTuple):
    entities: list[EntityWrite]
    written: dict[str, Any]
    """key → the part object each entity write encodes (for the state cache)."""
    records: dict[str, str]
    call_records: dict[str, str]
    teams: dict[str, str]
    """states key → the team ("" none) the batch counted an agent in without writing its state:
    the commit checks the agent still has it (`Outcome.teams_read`)."""


def agent_writes(outcome: Outcome, keys: dict[str, AgentKeys], versions: dict[str, int],
                 forced: dict[str, Parts], ttl_ms: int, dumps: Any) -> AgentWrites:
    """The entity writes of the parts each agent's batch changed (and their records), and the
    team checks of the agents whose team it read. The states part carries the agent's team
    beside its JSON (every team change writes it), where the commit compares it."""
    out = AgentWrites([], {}, {}, {}, {})
    for a, team in outcome.teams_read.items():
        if a not in forced:  # a forced write is version-checked (as are the batch's own writes)
            out.teams[keys[a].states] = team or ""
    for a, state in outcome.agents.items():
        parts = outcome.agent_parts.get(a, Parts.NONE) | forced.get(a, Parts.NONE)
        if not parts:
            continue
        k = keys[a]
        states, calls = state.split()
        if Parts.STATES in parts:
            out.entities.append(EntityWrite(k.states, versions[k.states], states.encode(),
                                            ttl_ms, k.calls, state.team or ""))
            out.written[k.states] = states
            out.records[a] = dumps(state.states_record())
            state.encoded_points = states.encoded_points
        if Parts.CALLS in parts:
            out.entities.append(EntityWrite(k.calls, versions[k.calls], calls.encode(), ttl_ms,
                                            k.states))
            out.written[k.calls] = calls
            out.call_records[a] = dumps(state.calls_record())
    return out
