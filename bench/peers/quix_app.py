"""Peer: what a Quix Streams user would write for a subset of our KPIs.

1-minute tumbling windows, per campaign and per agent, of dialed / attempts (answered +
unanswered) / connected (answered by a person) / handled / talk + hold ms / wrap-ups; event time
from the payload's `ts`; duplicates dropped by `event_id` (state per message key: a resent event
keeps its key); window results written to Redis as one hash per (scope, window start).

Quix windows are per message key, so every event is expanded to its scopes and re-keyed by
scope (`group_by`, one repartition topic). Grace: `--grace-ms` (the default, 24 h, is what makes
a replay of a simulated day exact; a 2-minute grace drops most window updates of such a replay
as late). Window results go out with `.current()` (every update), and the sink keeps the last
value per window until Quix's checkpoint, then writes them in one Redis pipeline.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Clock, peer_args  # noqa: E402

GRACE_MS = int(os.environ.get("QUIX_GRACE_MS", str(24 * 3_600_000)))
FIELDS = ("dialed", "attempts", "connected", "handled", "talk_hold_ms", "wrapups")


def event_ms(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    """Event time from the payload (the Kafka timestamp is publish time)."""
    ts = value.get("ts") if isinstance(value, dict) else None
    if isinstance(ts, str):
        return int(datetime.fromisoformat(ts).timestamp() * 1000)
    return int(timestamp)


def counts(e: dict[str, Any]) -> dict[str, int]:
    kind = e.get("type")
    if kind == "call.dialed":
        return {"dialed": 1}
    if kind == "call.answered":
        return {"attempts": 1, "connected": int(e.get("answered_by") == "human")}
    if kind == "call.unanswered":
        return {"attempts": 1}
    if kind == "call.ended" and e.get("agent_id"):
        return {"handled": 1, "talk_hold_ms": int(e.get("talk_ms", 0)) + int(e.get("hold_ms", 0))}
    if kind == "call.wrapup":
        return {"wrapups": 1}
    return {}


def main() -> None:
    import redis
    from quixstreams import Application
    from quixstreams.sinks.base import BatchingSink, SinkBatch

    args = peer_args()
    clock = Clock(args.outdir)
    progress = {"in": 0, "expanded": 0, "windowed": 0}

    class RedisWindows(BatchingSink):
        """The newest value of every window updated since the last checkpoint, one pipeline."""

        def setup(self) -> None:
            self.r = redis.Redis.from_url(str(args.redis_url))

        def write(self, batch: SinkBatch) -> None:
            latest: dict[str, Any] = {}  # window key → its counts (redis-py types mappings narrowly)
            for item in batch:
                key = item.key.decode() if isinstance(item.key, bytes) else str(item.key)
                latest[f"quix:{key}:{item.value['start']}"] = item.value["value"]
            pipe = self.r.pipeline(transaction=False)
            for k, v in latest.items():
                pipe.hset(k, mapping=v)
            pipe.execute()

    app = Application(broker_address=args.bootstrap, consumer_group=f"quix-{os.getpid()}",
                      auto_offset_reset="earliest", state_dir=str(args.outdir / "quix-state"),
                      loglevel="WARNING",
                      consumer_extra_config={"session.timeout.ms": 6000})
    topic = app.topic(args.topic, value_deserializer="json", timestamp_extractor=event_ms)
    sdf = app.dataframe(topic)

    def arrived(e: dict[str, Any]) -> dict[str, Any]:
        clock.first()
        progress["in"] += 1
        return e

    def fresh(e: dict[str, Any], state: Any) -> bool:
        """First time this event_id is seen (state is per message key)."""
        if state.exists(e["event_id"]):
            return False
        state.set(e["event_id"], 1)
        return True

    def scopes(e: dict[str, Any]) -> list[dict[str, Any]]:
        c = counts(e)
        if not c:
            check_done()
            return []
        out = [{"scope": f"campaign:{e['campaign_id']}", "c": c}]
        if e.get("agent_id"):
            out.append({"scope": f"agent:{e['agent_id']}", "c": c})
        progress["expanded"] += len(out)
        check_done()
        return out

    def add(acc: dict[str, int], rec: dict[str, Any]) -> dict[str, int]:
        for name, v in rec["c"].items():
            acc[name] += v
        return acc

    def init(rec: dict[str, Any]) -> dict[str, int]:
        return add(dict.fromkeys(FIELDS, 0), rec)

    def check_done() -> None:
        """Every input message seen and every window update it led to applied."""
        if progress["in"] >= args.expected and progress["windowed"] >= progress["expanded"]:
            if not clock.finished:
                clock.done(**progress)
            app.stop()

    def windowed(result: Any) -> Any:
        progress["windowed"] += 1
        check_done()
        return result

    sdf = sdf.apply(arrived).filter(fresh, stateful=True).apply(scopes, expand=True)
    sdf = sdf.group_by(lambda rec: rec["scope"], name="scope")
    sdf = sdf.tumbling_window(60_000, grace_ms=GRACE_MS).reduce(add, init).current()
    sdf = sdf.apply(windowed)
    sdf.sink(RedisWindows())
    app.run()


if __name__ == "__main__":
    main()
