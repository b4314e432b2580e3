"""Peer: the bare confluent-kafka (librdkafka) consumer, `json.loads` on every value and nothing
else. The floor for the client Quix Streams is built on."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Clock, peer_args  # noqa: E402


def main() -> None:
    from confluent_kafka import Consumer
    args = peer_args()
    clock = Clock(args.outdir)
    consumer = Consumer({"bootstrap.servers": args.bootstrap,
                         "group.id": f"bare-confluent-{os.getpid()}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "enable.auto.commit": True})
    consumer.subscribe([args.topic])
    seen = 0
    try:
        while seen < args.expected:
            records = consumer.consume(num_messages=2000, timeout=0.1)
            for record in records:
                if record.error():
                    continue
                clock.first()
                json.loads(record.value())
                seen += 1
        clock.done()
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
