"""Counter deltas keyed by (scope, minute bucket, counter): what a batch adds to the store."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

DeltaKey = tuple[str, int, str]


class Deltas:
    """Accumulates signed counter increments; zero sums vanish so a no-op batch writes nothing."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: defaultdict[DeltaKey, float] = defaultdict(float)

    def add(self, scopes: Iterable[str], minute: int, counters: Mapping[str, float],
            sign: int = 1) -> None:
        d = self._d
        for scope in scopes:
            for name, value in counters.items():
                d[(scope, minute, name)] += sign * value

    def add_one(self, scope: str, minute: int, name: str, value: float) -> None:
        self._d[(scope, minute, name)] += value

    def merge(self, other: "Deltas", sign: int = 1) -> None:
        for key, value in other._d.items():
            self._d[key] += sign * value

    def items(self) -> list[tuple[DeltaKey, float]]:
        return [(k, v) for k, v in self._d.items() if v != 0]

    def __len__(self) -> int:
        return sum(1 for v in self._d.values() if v != 0)
