"""What every peer of the throughput benchmark shares: how it reports.

A peer is started as `python bench/peers/X.py BOOTSTRAP TOPIC EXPECTED OUTDIR [REDIS_URL]`. It
touches OUTDIR/first when it sees its first message (run.py then samples the CPU of Redis and the
broker) and, once it has seen EXPECTED messages, writes OUTDIR/result.json: the seconds from its
first to its last message and its own CPU seconds (all threads) over the same stretch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import NamedTuple


class PeerArgs(NamedTuple):
    bootstrap: str
    topic: str
    expected: int
    outdir: Path
    redis_url: str | None


def peer_args() -> PeerArgs:
    a = sys.argv[1:]
    return PeerArgs(a[0], a[1], int(a[2]), Path(a[3]), a[4] if len(a) > 4 else None)


class Clock:
    """Wall and CPU time from the first message on."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.wall0 = self.cpu0 = 0.0
        self.started = self.finished = False

    def first(self) -> None:
        if not self.started:
            self.started = True
            self.wall0, self.cpu0 = time.monotonic(), time.process_time()
            (self.outdir / "first").write_text(str(self.wall0))

    def done(self, **extra: object) -> None:
        self.finished = True
        result = {"seconds": time.monotonic() - self.wall0,
                  "cpu_s": time.process_time() - self.cpu0, **extra}
        (self.outdir / "result.json").write_text(json.dumps(result))
