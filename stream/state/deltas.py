"""Counter deltas keyed by (scope, minute bucket, counter): what a batch adds to the store."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple


class DeltaKey(NamedTuple):
    scope: str
    minute: int
    """The minute bucket (epoch ms)."""
    counter: str


Group = defaultdict[str, float]
LeadSaleKey = tuple[str, str, str, str]
"""(scope, period kind `week`/`month`, period id, lead_id): a lead's sales in a retention set."""


class Deltas:
    """Accumulates signed counter increments; zero sums vanish so a no-op batch writes nothing.

    Grouped by (scope, minute) because that is how the store writes them (one minute hash, one
    hour hash and one total hash per group): the commit encodes a group without regrouping."""

    __slots__ = ("_g", "leads")

    def __init__(self) -> None:
        self._g: dict[tuple[str, int], Group] = {}
        self.leads: defaultdict[LeadSaleKey, int] = defaultdict(int)
        """Sales per lead per retention set (`stream.kpi.retention`): +1 for a sale, −1 when a
        re-attribution takes it from a lead."""

    def group(self, scope: str, minute: int) -> Group:
        g = self._g.get((scope, minute))
        if g is None:
            g = self._g[(scope, minute)] = defaultdict(float)
        return g

    def add(self, scopes: Iterable[str], minute: int, counters: Mapping[str, float],
            sign: int = 1) -> None:
        """Add `sign` × `counters` to each scope's group of `minute` (in the order given: the
        order in which float counters are summed is part of the exact result)."""
        values = counters.items() if sign == 1 else [(n, sign * v) for n, v in counters.items()]
        groups = self._g
        for scope in scopes:
            g = groups.get((scope, minute))
            if g is None:
                g = groups[(scope, minute)] = defaultdict(float)
            for name, value in values:
                g[name] += value

    def add_each(self, scopes: Iterable[str], minute: int, names: Iterable[str],
                 value: float) -> None:
        """`add(scopes, minute, {name: value for name in names})`, without the dict."""
        groups = self._g
        for scope in scopes:
            g = groups.get((scope, minute))
            if g is None:
                g = groups[(scope, minute)] = defaultdict(float)
            for name in names:
                g[name] += value

    def add_one(self, scope: str, minute: int, name: str, value: float) -> None:
        self.group(scope, minute)[name] += value

    def merge(self, other: Deltas, sign: int = 1) -> None:
        for (scope, minute), g in other._g.items():
            mine = self.group(scope, minute)
            for name, value in g.items():
                mine[name] += sign * value
        for key, n in other.leads.items():
            self.leads[key] += sign * n

    def lead_sales(self) -> dict[LeadSaleKey, int]:
        """The non-zero changes of the retention sets, as the store commits them."""
        return {k: n for k, n in self.leads.items() if n}

    def groups(self, prefix: str = "") -> list[tuple[str, int, Group]]:
        """(scope, minute, counters) of every group whose scope starts with `prefix`."""
        return [(s, m, g) for (s, m), g in self._g.items() if s.startswith(prefix)]

    def grouped(self) -> dict[tuple[str, int], dict[str, float]]:
        """The non-zero deltas, grouped by (scope, minute), as the store commits them."""
        out: dict[tuple[str, int], dict[str, float]] = {}
        for key, g in self._g.items():
            nonzero = {n: v for n, v in g.items() if v != 0}
            if nonzero:
                out[key] = nonzero
        return out

    def items(self) -> list[tuple[DeltaKey, float]]:
        return [(DeltaKey(s, m, n), v) for (s, m), g in self._g.items() for n, v in g.items()
                if v != 0]

    def __len__(self) -> int:
        return sum(1 for g in self._g.values() for v in g.values() if v != 0)
