"""The commit's number encoding: every delta reaches Redis's hashes as exactly the value the
batch holds (Lua's own number formatting keeps only 14 digits, so the commit sends strings)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.cli.embedded import free_port, redis_binary
from stream.kpi.windows import MINUTE_MS
from stream.store.commit import CommitBatch
from stream.store.redis_store import Store
from tests.processes import running

NOW = 1_767_225_600_000
_scope_ids = itertools.count()


class Committer:
    """One Store on one event loop for the whole module: each example commits to a fresh scope."""

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.store = Store(url)

    def round_trip(self, deltas: dict[str, float]) -> dict[str, float]:
        scope = f"campaign:p{next(_scope_ids)}"

        async def go() -> dict[str, float]:
            await self.store.commit(CommitBatch(counters={(scope, NOW - 5 * MINUTE_MS): deltas}, notify=False), NOW)
            stored = (await self.store.totals([scope]))[scope]
            return {name: stored[name] for name in deltas}  # (a negative delta is also kept as retracted:<name>)

        return self.runner.run(go())

    def close(self) -> None:
        self.runner.run(self.store.close())
        self.runner.close()


@pytest.fixture(scope="module")
def committer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Committer]:
    port = free_port()
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with running(request.node, "redis", argv, tmp_path_factory.mktemp("redis"), port=port):
        c = Committer(f"redis://127.0.0.1:{port}/0")
        try:
            yield c
        finally:
            c.close()


# The float counters are sums of money (cents), MOS values and scores (two decimals at most):
# any such value, and any double of at least 0.1 (a sum of them, with its float error). Redis
# (6.2, the embedded server) prints HINCRBYFLOAT results with 17 decimal places, so a double much
# smaller than 0.1 keeps fewer than 17 significant digits there; no counter holds one.
cents = st.integers(min_value=-10**14, max_value=10**14).map(lambda c: c / 100)
large = st.floats(min_value=0.1, max_value=1e12).flatmap(lambda v: st.sampled_from([v, -v]))
finite = st.one_of(cents, large)


@settings(max_examples=150, deadline=None)
@given(value=finite.filter(lambda v: v != 0))
def test_a_float_delta_is_stored_exactly(committer: Committer, value: float) -> None:
    assert committer.round_trip({"revenue": value}) == {"revenue": value}


@settings(max_examples=80, deadline=None)
@given(value=st.integers(min_value=-(2**53), max_value=2**53).filter(bool))
def test_an_integer_delta_is_stored_exactly(committer: Committer, value: int) -> None:
    assert committer.round_trip({"dialed": value}) == {"dialed": float(value)}


@settings(max_examples=80, deadline=None)
@given(value=finite.filter(lambda v: v != int(v)))
def test_a_fractional_delta_of_an_integer_counter_is_not_rounded(committer: Committer, value: float) -> None:
    assert committer.round_trip({"talk_ms": value}) == {"talk_ms": value}
