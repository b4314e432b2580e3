"""What the two Faust peers share: the app (Faust's defaults for everything a user would not
touch, except the short session timeout every process on the embedded broker needs), the topic
as raw bytes, and the count up to EXPECTED."""

from __future__ import annotations

import os
from typing import Any

import faust
from common import Clock, peer_args


class FaustPeer:
    def __init__(self, name: str, **settings: Any) -> None:
        self.args = peer_args()
        self.clock = Clock(self.args.outdir)
        self.seen = 0
        self.app = faust.App(f"{name}-{os.getpid()}", broker=f"kafka://{self.args.bootstrap}",
                             store="memory://", web_enabled=False,
                             consumer_auto_offset_reset="earliest", broker_session_timeout=6.0,
                             broker_heartbeat_interval=1.2,
                             datadir=str(self.args.outdir / "faust-data"), **settings)
        self.topic = self.app.topic(self.args.topic, key_type=bytes, value_type=bytes,
                                    key_serializer="raw", value_serializer="raw")

    def saw(self, n: int) -> None:
        """`n` more messages: the clock starts at the first; at EXPECTED the peer reports and
        exits (a Faust worker does not stop by itself)."""
        self.clock.first()
        self.seen += n
        if self.seen >= self.args.expected:
            self.clock.done()
            os._exit(0)

    def run(self) -> None:
        faust.Worker(self.app, loglevel="warning", quiet=True).execute_from_commandline()
