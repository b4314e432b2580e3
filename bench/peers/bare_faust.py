"""Peer: a do-nothing Faust agent on the same topic (faust-streaming 0.15.3, the pinned trio).

It iterates the stream the way a Faust user would (`async for value in stream`), with Faust's
defaults for everything a user would not touch, except the short session timeout every process
on the embedded broker needs. That is the baseline a Faust user's app starts from.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faust  # noqa: E402
from common import Clock, peer_args  # noqa: E402

args = peer_args()
clock = Clock(args.outdir)
app = faust.App(f"bare-faust-{os.getpid()}", broker=f"kafka://{args.bootstrap}", store="memory://",
                web_enabled=False, consumer_auto_offset_reset="earliest",
                broker_session_timeout=6.0, broker_heartbeat_interval=1.2,
                datadir=str(args.outdir / "faust-data"))
topic = app.topic(args.topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                  value_serializer="raw")
seen = 0


@app.agent(topic, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    global seen
    async for _ in stream:
        clock.first()
        seen += 1
        if seen >= args.expected:
            clock.done()
            os._exit(0)


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
