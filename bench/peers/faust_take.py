"""Peer: the earlier benchmark's do-nothing Faust agent (`bench/bare_faust.py` before issue 11):
the same app, but batching with `stream.take_events(2000, 0.1)`. Kept beside `bare_faust.py` so
one run shows whether the way the agent iterates explains the earlier, lower figure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faust  # noqa: E402
from common import Clock, peer_args  # noqa: E402

args = peer_args()
clock = Clock(args.outdir)
app = faust.App(f"faust-take-{os.getpid()}", broker=f"kafka://{args.bootstrap}", store="memory://",
                web_enabled=False, consumer_auto_offset_reset="earliest",
                broker_session_timeout=6.0, broker_heartbeat_interval=1.2,
                datadir=str(args.outdir / "faust-data"), stream_buffer_maxsize=4096)
topic = app.topic(args.topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                  value_serializer="raw")
seen = 0


@app.agent(topic, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    global seen
    async for events in stream.take_events(2000, 0.1):  # type: ignore[attr-defined]
        clock.first()
        seen += len(events)
        if seen >= args.expected:
            clock.done()
            os._exit(0)


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
