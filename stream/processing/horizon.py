"""The event time below which no source partition can still deliver a valid agent event.

An agent's history is kept for `CALLKPI_AGENT_STATE_HOURS` behind the lower of its own newest
event and this watermark. A backlog is consumed unevenly across partitions (one partition's
calls run hours of event time ahead of another's agent events), so the watermark is exact by
construction, never by timing:

- a partition with records not yet applied holds the horizon at the newest event time applied
  from it: its remaining records came after those in the stream, so they are at most the
  contract's lateness older;
- a partition of the topic never applied at all holds it entirely (nothing is pruned): its
  records could be of any age;
- only a partition whose last applied fetch reached its high watermark (the consumer reported
  lag 0 with it) stops holding: what it delivers next arrives after now, at most the contract's
  lateness late, which the kept history covers;
- nothing older than the contract's maximum event age (`too_old`) is ever needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stream.contract import Event
from stream.kpi.windows import MAX_EVENT_AGE_MS
from stream.store.layout import PartitionProgress

HOLD_ALL_MS = -(2**62)
"""The watermark while a partition's progress is unknown: no agent history is pruned."""


def topic_partitions(topic: str, count: int) -> list[str]:
    """Every `<topic>:<partition>` of the input topic (the worker creates it with `count`)."""
    return [f"{topic}:{p}" for p in range(count)]


def merged(stored: Mapping[str, PartitionProgress], ahead: Mapping[str, PartitionProgress],
           batch: Iterable[tuple[str, Event]], lags: Mapping[str, float]
           ) -> dict[str, PartitionProgress]:
    """Progress once this batch is applied: the store's, then that of the batch committing
    ahead of it, then this batch's own events (`lags`: the consumer's `lag:<tp>` gauges)."""
    out = dict(stored)
    for tp, p in ahead.items():
        out[tp] = PartitionProgress(_max(out.get(tp, p).newest_ms, p.newest_ms), p.caught_up)
    touched: dict[str, int | None] = {}
    for tp, event in batch:
        touched[tp] = _max(touched.get(tp), event.ts_ms)
    for tp in lags_tps(lags) | set(touched):
        before = out.get(tp, PartitionProgress(None, False))
        out[tp] = PartitionProgress(_max(before.newest_ms, touched.get(tp)),
                                    lags.get(f"lag:{tp}") == 0)
    return out


def lags_tps(lags: Mapping[str, float]) -> set[str]:
    return {k[4:] for k in lags if k.startswith("lag:")}


def low_watermark(progress: Mapping[str, PartitionProgress], partitions: Iterable[str],
                  now_ms: int) -> int | None:
    """The event time every partition that can still deliver old events has reached (None:
    no partition holds the horizon back)."""
    holding: list[int] = []
    for tp in set(partitions) | set(progress):
        p = progress.get(tp)
        if p is None or p.newest_ms is None:
            if p is None or not p.caught_up:
                return HOLD_ALL_MS
            continue
        if not p.caught_up:
            holding.append(max(p.newest_ms, now_ms - MAX_EVENT_AGE_MS))
    return min(holding) if holding else None


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
