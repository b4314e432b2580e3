"""The adapter's checkpoint: where in the source it is and its mapper's small state, in one JSON
file replaced atomically, written only after the sink acknowledged everything before it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that must not be used (too old, another source's): a one-line message."""


def load(path: Path, *, source: str, instance: str, horizon_hours: float, force: bool,
         now: float | None = None) -> dict[str, Any] | None:
    """The saved checkpoint, or None when there is none. Refuses one older than the service's
    dedupe horizon (events re-sent from there could be counted twice) unless `force`."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable checkpoint ({e}); move it away and use "
                              "--from-start, or fix it") from None
    if data.get("source") != source or data.get("instance") != instance:
        raise CheckpointError(f"{path}: a checkpoint of {data.get('source')}/"
                              f"{data.get('instance')}, not {source}/{instance}; give each "
                              "adapter its own --checkpoint")
    age_h = ((now or time.time()) - float(data.get("saved_at", 0))) / 3600
    if age_h > horizon_hours and not force:
        raise CheckpointError(
            f"{path}: the checkpoint is {age_h:.1f} h old, older than the service's dedupe "
            f"horizon (CALLKPI_STATE_HORIZON_HOURS={horizon_hours:g} h): events re-sent from "
            "there may no longer be recognised as duplicates and could be counted twice. Use "
            "--force to resume anyway, or --from-start into a fresh service")
    return data


def save(path: Path, *, source: str, instance: str, position: dict[str, Any],
         state: dict[str, Any], now: float | None = None) -> float:
    saved_at = now or time.time()
    data = {"version": VERSION, "source": source, "instance": instance, "saved_at": saved_at,
            "position": position, "state": state}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return saved_at
