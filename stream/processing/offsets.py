"""Where Redis's applied offsets and Kafka's disagree, and what a worker does about it.

Redis is the commit point: a batch's effects and its partitions' applied offsets are written by
one script. Kafka's committed offsets only say where the group resumes reading. The two agree
(Redis at or ahead of Kafka) unless Redis lost commits or does not belong to this topic:

- **Redis behind the batch** (restored from a snapshot, a failover to a lagging replica, AOF
  `everysec` after a crash): the events between Redis's applied offset and the batch were counted
  in commits Redis no longer has. The batch is not applied; the worker seeks the partition back
  to the applied offset + 1 and reads them again (`rewind`). If a re-read starts at the same
  offset again, those offsets hold no records any more (transaction markers, compaction, or
  expired by retention): they are counted as `offsets_unreadable` and the batch is applied.
- **Redis ahead of the partition's end** (high watermark from the fetch: the topic was
  recreated, or the store belongs to another cluster): applying would silently skip the new
  events at offsets Redis thinks are applied. `CALLKPI_OFFSET_AHEAD_POLICY` says what happens:
  `pause` the partition (default: nothing is applied or acked until an operator decides) or
  `reset` the store's offset to just before what the group reads now (docs/operations.md).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from enum import StrEnum
from typing import NamedTuple

log = logging.getLogger(__name__)
GAPS_REMEMBERED = 4096


class Action(StrEnum):
    REWIND = "rewind"
    """Seek the partition to `offset` and read it again."""
    HOLD = "hold"
    """Stop consuming the partition (policy `pause`)."""


class Exclusion(NamedTuple):
    """A partition left out of a batch: not applied, its messages not acked."""

    tp: str
    action: Action
    offset: int  # rewind: where to read from; hold: the store's applied offset


class Reconciled(NamedTuple):
    excluded: dict[str, Exclusion]
    reset: dict[str, int]
    """tp → the applied offset the batch is filtered on instead of the store's (policy `reset`)."""
    counters: dict[str, int]
    gauges: dict[str, float]


class OffsetCheck:
    """Compares each partition of a batch with the store's applied offset (one per pipeline)."""

    def __init__(self, ahead_policy: str = "pause") -> None:
        self.ahead_policy = ahead_policy
        self._gaps: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        """(tp, applied, first offset of a batch) → the batch that asked for a re-read."""

    def check(self, batch_id: int, first: dict[str, int], applied: dict[str, int],
              highwaters: dict[str, int]) -> Reconciled:
        """`first`: each partition's lowest offset in the batch; `applied`: the store's applied
        offsets; `highwaters`: the partitions' ends from the fetch (next offset to be written)."""
        out = Reconciled({}, {}, {}, {})
        for tp, low in sorted(first.items()):
            done, end = applied[tp], highwaters.get(tp)
            if end is not None:
                out.gauges[f"store_ahead:{tp}"] = max(0, done + 1 - end)
            if end is not None and done >= end:
                self._ahead(tp, low, done, end, out)
            elif done + 1 < low:
                self._behind(batch_id, tp, low, done, out)
        return out

    def _ahead(self, tp: str, low: int, done: int, end: int, out: Reconciled) -> None:
        out.counters["store_ahead"] = out.counters.get("store_ahead", 0) + 1
        if self.ahead_policy == "reset":
            log.error("Redis's applied offset of %s is %d, but the partition ends at %d (topic "
                      "recreated?): policy reset, the store's offset becomes %d and the partition "
                      "is counted from offset %d. See docs/operations.md#redis-rollback-and-restore",
                      tp, done, end, low - 1, low)
            out.reset[tp] = low - 1
            out.counters["store_offset_resets"] = out.counters.get("store_offset_resets", 0) + 1
            return
        log.error("Redis's applied offset of %s is %d, but the partition ends at %d: the topic "
                  "was recreated or this Redis belongs to another cluster. Partition paused "
                  "(CALLKPI_OFFSET_AHEAD_POLICY=pause); nothing of it is applied or acked. See "
                  "docs/operations.md#redis-rollback-and-restore", tp, done, end)
        out.excluded[tp] = Exclusion(tp, Action.HOLD, done)

    def _behind(self, batch_id: int, tp: str, low: int, done: int, out: Reconciled) -> None:
        key = (tp, done, low)
        asked = self._gaps.get(key)
        if asked is not None and asked != batch_id:
            # Read again from done + 1, and the first record is at `low` again: nothing there.
            log.warning("offsets %d..%d of %s hold no records (expired by retention, compacted, "
                        "or transaction markers): %d offsets were never applied", done + 1,
                        low - 1, tp, low - done - 1)
            out.counters["offsets_unreadable"] = out.counters.get("offsets_unreadable", 0) + low - done - 1
            del self._gaps[key]
            return
        if asked is None:
            log.warning("Redis's applied offset of %s is %d, behind this batch (from %d): Redis "
                        "lost commits (restored from a snapshot, failover, AOF everysec after a "
                        "crash). Reading %s again from %d", tp, done, low, tp, done + 1)
            out.counters["store_rewinds"] = out.counters.get("store_rewinds", 0) + 1
            self._gaps[key] = batch_id
            while len(self._gaps) > GAPS_REMEMBERED:
                self._gaps.popitem(last=False)
        out.excluded[tp] = Exclusion(tp, Action.REWIND, done + 1)
