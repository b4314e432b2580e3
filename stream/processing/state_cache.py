"""The entity states this process last committed, kept so the next batch need not read them.

Reading and decoding a call's or an agent's state from Redis was a fifth of the batch step:
every batch that touches an agent read its timeline back, although this very process had just
written it. A cached state is used only while Redis still holds the same version (checked
in the batch's first round trip, one small reply per batch), and the commit checks the version
of everything it writes anyway, so the cache can be stale but never wrong. Any conflict or
Redis error clears it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class StateCache:
    """Least recently used states, up to a budget counted in bytes of their JSON."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[int, Any, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> tuple[int, Any] | None:
        """(version, state) as committed. Callers clone the state before changing it."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0], entry[1]

    def put(self, key: str, version: int, state: Any, size: int) -> None:
        self.drop(key)
        if size > self.max_bytes:
            return
        self._entries[key] = (version, state, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
