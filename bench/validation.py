"""CPU per event of contract validation alone: `validate` (fast path) against `validate_reference`.

    python bench/validation.py [--agents N] [--hours H] [--rounds R]

Validates the stream `stages.py` replays (same simulator, same sizes), alternating the two
validators round by round so that both see the same load on a shared machine; prints µs per
event of each (CPU time) and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stages import sim_messages  # noqa: E402

from stream.contract import Event, Rejection, validate, validate_reference  # noqa: E402
from stream.kpi.windows import MAX_EVENT_AGE_MS  # noqa: E402

Validator = Callable[..., Event | Rejection]


def cpu_per_event(check: Validator, values: list[bytes], now_ms: int) -> float:
    t0 = time.process_time()
    for v in values:
        check(v, now_ms=now_ms, max_age_ms=MAX_EVENT_AGE_MS)
    return 1e6 * (time.process_time() - t0) / len(values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=150)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    messages = sim_messages(args.agents, args.hours)
    values = [m.value for m in messages]
    now = messages[0].timestamp_ms
    for r in range(args.rounds):
        ref = cpu_per_event(validate_reference, values, now)
        fast = cpu_per_event(validate, values, now)
        print(f"round {r + 1}: {len(values):,} events, reference {ref:.2f} us/event, "
              f"validate {fast:.2f} us/event, {ref / fast:.2f}x")


if __name__ == "__main__":
    main()
