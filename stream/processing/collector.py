"""The garbage-collector policies of the long-running processes: the pipeline process freezes
young objects after every batch; `callkpi serve` freezes what its startup made.

The pipeline process.

Reference counting frees almost everything a batch allocates; the cyclic collector is only
needed for cycles, and a simulated day makes almost none (about 300 objects in 140,000 events,
BENCHMARKS.md "The collector"). Yet with the default policy it cost ~9 % of the batch step:
what a batch keeps (states in the loader's cache, the batch whose commit is in flight, about
30,000 objects per batch of 5,000 events) was traversed by a young collection and again by a
middle one before it settled in the old generation. Freezing after each batch (`gc.freeze`:
O(1), it moves the young generations to the permanent one) hands survivors straight to the
permanent generation, and a young threshold above one batch's working set means a young
collection rarely runs mid-batch. The permanent generation is unfrozen and collected whole
when the process is idle or every `FULL_GC_EVERY_S` (`full`), so cycles among frozen objects
are reclaimed then: they are not leaked.

`callkpi serve` (`serving`). A wallboard refresh of 5,000 agents builds tens of thousands of
short-lived containers (rows, sums, KPI values) that reference counting frees when the answer is
written. With the default thresholds young collections ran ~45 times a refresh, promoted what
was in flight to the old generation, and so set off a full collection every two or three
refreshes, each traversing the startup's ~100,000 objects (modules, functions, the catalog) and
that promoted garbage: 16-24 ms of collections a refresh, ~40 ms a /metrics (`gc.callbacks`,
BENCHMARKS.md "serve's collector"), each full one a pause of every request and stream in
flight. Startup objects are frozen once (they live as long as the process); young collections
wait for 50,000 net allocations, more than a refresh keeps at once, so cycles (a few per
request: tracebacks, futures) are still freed by them, and full collections run on Python's
own schedule.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (200_000, 50, 1_000_000)
"""`gc.set_threshold` in the pipeline process: a young collection after 200,000 net container
allocations (a batch of 5,000 events keeps ~30,000, its peak working set is larger), middle
ones every 50 of those, and no automatic full collection (`full` runs them)."""
FULL_GC_EVERY_S = 600.0
"""A full collection at least this often under continuous load (bounds cyclic garbage)."""


SERVE_GC_THRESHOLDS = (50_000, 20, 10)
"""`gc.set_threshold` in `callkpi serve`: a young collection after 50,000 net container
allocations (a 5,000-agent refresh's transient rows and sums are freed before one sees them),
middle and full ones at Python's default ratios."""


def serving() -> None:
    """Apply serve's policy, once its app is built and started (`readers.service.run_service`):
    what exists now is collected once and frozen, never traversed again."""
    gc.set_threshold(*SERVE_GC_THRESHOLDS)
    gc.collect()
    gc.freeze()


def start() -> None:
    """Apply the policy to this process (the pipeline process; `bench/stages.py`)."""
    gc.set_threshold(*GC_THRESHOLDS)


def after_batch() -> None:
    """What the batch kept moves to the permanent generation: no collection traverses it again
    until `full`."""
    gc.freeze()


def full() -> int:
    """Collect everything, the frozen objects included (returns what was unreachable)."""
    gc.unfreeze()
    return gc.collect()
