"""Peer: the bare aiokafka consumer (what Faust is built on), `json.loads` on every value and
nothing else. The floor for any Python consumer of this topic on aiokafka."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Clock, peer_args  # noqa: E402


async def main() -> None:
    from aiokafka import AIOKafkaConsumer
    args = peer_args()
    clock = Clock(args.outdir)
    consumer = AIOKafkaConsumer(args.topic, bootstrap_servers=args.bootstrap,
                                group_id=f"bare-aiokafka-{os.getpid()}",
                                auto_offset_reset="earliest", session_timeout_ms=6000,
                                heartbeat_interval_ms=1000, max_poll_records=2000,
                                fetch_max_wait_ms=100)
    await consumer.start()
    seen = 0
    try:
        while seen < args.expected:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            for records in batches.values():
                if records:
                    clock.first()
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        clock.done()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
