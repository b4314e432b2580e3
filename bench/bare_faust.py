"""The baseline: a do-nothing Faust agent reading the same topic with the same batching settings.

Run as `python bench/bare_faust.py BOOTSTRAP TOPIC EXPECTED OUTFILE`; it writes the seconds (and
its own CPU seconds) from the first to the last of EXPECTED messages to OUTFILE and exits.
"""

from __future__ import annotations

import os
import sys
import time

import faust

bootstrap, topic_name, expected, outfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
app = faust.App(f"bare-{os.getpid()}", broker=f"kafka://{bootstrap}", store="memory://",
                web_enabled=False, consumer_auto_offset_reset="earliest",
                broker_session_timeout=6.0, broker_heartbeat_interval=1.2,
                datadir=f"/tmp/bare-faust-{os.getpid()}", stream_buffer_maxsize=4096)
topic = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw",
                  value_serializer="raw")
state = {"n": 0, "first": 0.0, "cpu": 0.0}


@app.agent(topic, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    async for events in stream.take_events(2000, 0.1):  # type: ignore[attr-defined]
        if not state["n"]:
            state["first"], state["cpu"] = time.monotonic(), time.process_time()
        state["n"] += len(events)
        if state["n"] >= expected:
            with open(outfile, "w") as f:
                f.write(f"{time.monotonic() - state['first']} {time.process_time() - state['cpu']}\n")
            os._exit(0)


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
