"""What a reader hands the run loop: one record's raw bytes, its parsed form (a database row;
None for a line) and the reader's position after it; or IDLE when nothing new is there yet."""

from __future__ import annotations

from typing import Any, NamedTuple


class Item(NamedTuple):
    raw: bytes
    row: Any
    position: dict[str, Any]


IDLE = object()
"""The reader is caught up: the run loop flushes and checkpoints, then asks again."""
