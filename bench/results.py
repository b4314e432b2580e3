"""bench/results.json: every bench script merges its own key into it, and nothing else.

A script reads the file, sets its key and writes it back under a lock and by rename, so that
two benchmarks finishing together, or a run with other parameters, cannot drop another's
figures. A result measured again is not lost either when the caller asks to keep it: the
previous value moves into the new one's `earlier` list (oldest first), since figures on this
shared machine vary with its load and are compared across sittings.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


def save_result(key: str, result: dict[str, Any], *, keep_earlier: bool = False,
                under: str | None = None, path: Path | None = None) -> None:
    """Merge `result` into the results file under `key` (or under `key`'s entry `under`);
    everything else is left as it is. `keep_earlier`: the value it replaces moves into
    `result["earlier"]`."""
    path = path or RESULTS
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = json.loads(path.read_text()) if path.exists() else {}
        parent, name = (merged.setdefault(key, {}), under) if under else (merged, key)
        previous = parent.get(name)
        if keep_earlier and isinstance(previous, dict):
            earlier = previous.pop("earlier", [])
            result = {**result, "earlier": [*earlier, previous]}
        parent[name] = result
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(merged, indent=2) + "\n")
        os.replace(tmp, path)
