"""Peer: a do-nothing Faust agent on the same topic (faust-streaming 0.15.3, the pinned trio).

It iterates the stream the way a Faust user would (`async for value in stream`), with Faust's
defaults for everything a user would not touch, except the short session timeout every process
on the embedded broker needs. That is the baseline a Faust user's app starts from.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faust  # noqa: E402
from faust_peer import FaustPeer  # noqa: E402

peer = FaustPeer("bare-faust")


@peer.app.agent(peer.topic, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    async for _ in stream:
        peer.saw(1)


if __name__ == "__main__":
    peer.run()
