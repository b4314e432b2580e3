"""Peer: the earlier benchmark's do-nothing Faust agent (`bench/bare_faust.py` before issue 11):
the same app, but batching with `stream.take_events(2000, 0.1)`. Kept beside `bare_faust.py` so
one run shows whether the way the agent iterates explains the earlier, lower figure."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faust  # noqa: E402
from faust_peer import FaustPeer  # noqa: E402

peer = FaustPeer("faust-take", stream_buffer_maxsize=4096)


@peer.app.agent(peer.topic, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    async for events in stream.take_events(2000, 0.1):  # type: ignore[attr-defined]
        peer.saw(len(events))


if __name__ == "__main__":
    peer.run()
