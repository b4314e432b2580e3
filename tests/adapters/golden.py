"""Events as the adapters' golden tests write them: one line per event."""

from __future__ import annotations

from typing import Any


def event_line(event: dict[str, Any], without: tuple[str, ...] = ()) -> str:
    """`type HH:MM:SS key=value ...` in the event's own key order; event_id and the keys in
    `without` are left out ("ts" in `without` leaves out the time)."""
    head = [event["type"]] + ([] if "ts" in without else [event["ts"][11:19]])
    return " ".join(head + [f"{k}={v}" for k, v in event.items()
                            if k not in ("event_id", "type", "ts", *without)])
