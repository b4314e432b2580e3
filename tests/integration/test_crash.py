"""SIGKILL the worker mid-stream, restart it: every total is still exact (no loss, no double count).

The oracle is the pure processing layer run once over the whole stream (its order- and
batch-independence is proven in tests/unit/test_processing.py); the end-to-end equivalence test
against the independent reference calculator lives in test_equivalence.py.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest
import redis

from stream.contract import Event
from stream.kpi.contributions import Thresholds
from stream.state.agent_state import AgentState
from stream.state.batch import Loaded, process
from stream.state.call_state import CallState
from stream.store.commit import COMMIT_LUA
from tests.faultproxy import Cut, FaultProxy
from tests.harness import Service, children_of, jsonl, make_service, wait_until

pytestmark = pytest.mark.integration
NOW = int(time.time() * 1000)


def stream(calls: int, seed: int = 7) -> list[dict]:
    """A compact synthetic stream: full call lifecycles and agent states, shuffled, with dupes."""
    rng = random.Random(seed)
    out: list[dict] = []
    start = NOW - 50 * 60_000
    for i in range(calls):
        t = start + rng.randint(0, 45 * 60_000)
        cid, agent, camp = f"k{i}", f"a{rng.randint(1, 40)}", f"c{rng.randint(1, 3)}"
        base = {"call_id": cid, "campaign_id": camp}
        out.append({"event_id": f"{cid}-d", "type": "call.dialed", "ts": t, "caller_id": f"D{i % 5}", **base})
        if rng.random() < 0.6:
            out.append({"event_id": f"{cid}-u", "type": "call.unanswered", "ts": t + 9000, "reason": "busy", **base})
            continue
        out.append({"event_id": f"{cid}-a", "type": "call.answered", "ts": t + 8000, "answered_by": "human", **base})
        out.append({"event_id": f"{cid}-c", "type": "call.connected", "ts": t + 9000, "agent_id": agent,
                    "team_id": f"t{int(agent[1:]) % 4}", "wait_ms": rng.randint(0, 4000), **base})
        talk = rng.randint(5000, 300000)
        out.append({"event_id": f"{cid}-e", "type": "call.ended", "ts": t + 9000 + talk, "agent_id": agent,
                    "talk_ms": talk, "hold_ms": 0, **base})
        out.append({"event_id": f"{cid}-w", "type": "call.wrapup", "ts": t + 20000 + talk, "agent_id": agent,
                    "wrapup_ms": 11000, "disposition": rng.choice(["sale", "refused", "other"]),
                    "order_value": 10.0, **base})
    for a in range(1, 41):
        out.append({"event_id": f"s{a}", "type": "agent.state", "ts": start - 60_000, "agent_id": f"a{a}",
                    "state": "available", "team_id": f"t{a % 4}", "campaign_id": "c1"})
        out.append({"event_id": f"p{a}", "type": "agent.state", "ts": start + a * 30_000, "agent_id": f"a{a}",
                    "state": "paused", "reason": "break"})
    out += rng.sample(out, len(out) // 20)  # duplicates
    rng.shuffle(out)
    return out


def oracle(events: list[dict]) -> dict[tuple[str, str], float]:
    evs = [Event.from_dict(e) for e in events]
    calls: dict[str, CallState | None] = {e.call_id: None for e in evs if e.call_id}
    agents: dict[str, AgentState | None] = {e.agent_id: None for e in evs if e.agent_id}
    out = process(evs, Loaded(calls, agents), Thresholds(), now_ms=NOW, agent_state_ms=10**12)
    totals: defaultdict[tuple[str, str], float] = defaultdict(float)
    for (scope, _, name), v in out.deltas.items():
        totals[(scope, name)] += v
    return {k: round(v, 6) for k, v in totals.items() if round(v, 6)}


def store_totals(url: str) -> dict[tuple[str, str], float]:
    r = redis.Redis.from_url(url, decode_responses=True)
    out: dict[tuple[str, str], float] = {}
    for key in r.scan_iter("ck:t:*"):
        scope = str(key)[len("ck:t:"):]
        for field_, v in r.hgetall(key).items():
            name = str(field_)
            # `retracted:` fields count what late events took back on the way (for monotone
            # Prometheus counters): they depend on batching, the net totals must not
            if round(float(v), 6) and not name.startswith("retracted:"):
                out[(scope, name)] = round(float(v), 6)
    r.close()
    return out


def test_sigkill_mid_stream_keeps_every_total_exact(tmp_path: Path) -> None:
    events = stream(6000)
    # Commit to Kafka rarely, so the restarted worker is redelivered much that Redis already has.
    svc = make_service(tmp_path, {"CALLKPI_COMMIT_INTERVAL_S": "60", "CALLKPI_BATCH_MAX": "500"})
    try:
        svc.publish(jsonl(events))
        worker = svc.start_worker()
        wait_until(lambda: svc.pipeline_counter("consumed") >= len(events) * 0.25, 120,
                   lambda: svc.logs())
        kids = children_of(worker.proc.pid)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(10)
        wait_until(lambda: not any(os.path.exists(f"/proc/{k}") for k in kids), 15,
                   "the killed worker's pipeline process lives on")
        killed_at = svc.pipeline_counter("consumed")
        assert killed_at < len(events), "the worker finished before it was killed"
        svc.start_worker()
        svc.wait_consumed(len(events), timeout=180)
        time.sleep(1)
        assert svc.pipeline_counter("consumed") == len(events)
        assert svc.pipeline_counter("replayed") > 0, f"no redelivery to test (killed at {killed_at})"
        expected = oracle(events)
        actual = store_totals(svc.infra.redis_url)
        diff = {k: (actual.get(k), v) for k, v in expected.items() if actual.get(k) != v}
        extra = {k: v for k, v in actual.items() if k not in expected and not k[1].startswith("paused")}
        assert not diff, f"{len(diff)} totals differ, e.g. {list(diff.items())[:10]}"
        assert not extra, list(extra.items())[:10]
        assert svc.pipeline_counter("duplicates") == len(events) - len({e["event_id"] for e in events})
    finally:
        svc.stop()




@pytest.mark.parametrize("hold_ms", [0, 400], ids=["no-hold", "batch-hold"])
def test_two_workers_and_a_rebalance_keep_totals_exact(tmp_path: Path, hold_ms: int) -> None:
    """Two workers split the partitions; one dies mid-stream and the other takes over. The
    events of one call are deliberately spread over partitions (random keys): the entity
    version check must keep concurrent updates of one call exact, with and without a batch hold
    (published as a backlog, full fetches are rarely held: a rebalance that finds messages held
    is the next test's)."""
    events = stream(3000, seed=11)
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "300", "CALLKPI_BATCH_HOLD_MS": str(hold_ms)})
    try:
        keys = [str(random.Random(i).random()).encode() for i in range(len(events))]
        first, second = svc.start_worker(), svc.start_worker()
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        # Both running (heartbeats), then both in the group: the join takes about half the
        # session timeout. A fixed sleep was too short on a loaded CI machine, and the worker
        # is fast enough now to consume a third of the stream before a late joiner arrives.
        wait_until(lambda: set(r.hgetall("ck:workers")) == {"worker-1", "worker-2"}, 60, svc.logs)
        time.sleep(8)
        svc.publish(jsonl(events), keys)
        wait_until(lambda: svc.pipeline_counter("consumed") >= len(events) * 0.3, 120, svc.logs)
        second.proc.send_signal(signal.SIGKILL)
        svc.wait_consumed(len(events), timeout=180)
        time.sleep(1)
        assert svc.pipeline_counter("consumed") == len(events)
        expected, actual = oracle(events), store_totals(svc.infra.redis_url)
        diff = {k: (actual.get(k), v) for k, v in expected.items() if actual.get(k) != v}
        assert not diff, f"{len(diff)} totals differ, e.g. {list(diff.items())[:10]}"
        assert first.proc.poll() is None
    finally:
        svc.stop()


def assert_exact(svc: Service, events: list[dict]) -> None:
    expected, actual = oracle(events), store_totals(svc.infra.redis_url)
    diff = {k: (actual.get(k), v) for k, v in expected.items() if actual.get(k) != v}
    assert not diff, f"{len(diff)} totals differ, e.g. {list(diff.items())[:10]}"


def finish_with_a_new_worker(svc: Service, events: list[dict]) -> None:
    """Start a worker, let it read the rest of the stream, and check every total."""
    svc.start_worker()
    svc.wait_consumed(len(events), timeout=180)
    time.sleep(1)
    assert svc.pipeline_counter("consumed") == len(events)
    assert_exact(svc, events)


def test_a_killed_pipeline_process_stops_its_worker_and_a_restart_is_exact(tmp_path: Path) -> None:
    """The batch step runs in a child process: if it dies, the worker must stop (never ack
    what the child did not commit), and the next worker finishes the stream exactly."""
    events = stream(4000, seed=3)
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "300"})
    try:
        svc.publish(jsonl(events))
        worker = svc.start_worker()
        wait_until(lambda: svc.pipeline_counter("consumed") >= len(events) * 0.2, 120, svc.logs)
        kids = children_of(worker.proc.pid)
        assert kids, "the worker has no pipeline process"
        for kid in kids:
            os.kill(kid, signal.SIGKILL)
        worker.proc.wait(60)
        finish_with_a_new_worker(svc, events)
    finally:
        svc.stop()


def test_dropped_redis_connections_are_retried_without_double_counting(tmp_path: Path) -> None:
    """Connections cut mid-commit, both ways the cut can fall: before Redis has the script (not
    applied) and after it ran, with the reply lost (applied, the worker cannot know). The retry
    re-reads the applied offsets, so nothing is lost or counted twice, and every cut is counted.

    The cuts are made by a proxy on the worker's path to Redis, not by `CLIENT KILL` at random:
    a kill mostly finds the connection idle (redis-py reconnects silently), so whether a commit
    was hit at all depended on the machine's speed."""
    events = stream(4000, seed=5)
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "200"})
    commit_sha = hashlib.sha1(COMMIT_LUA.encode()).hexdigest().encode()
    with FaultProxy(("127.0.0.1", svc.infra.redis.port), commit_sha) as proxy:
        svc.env["CALLKPI_REDIS_URL"] = proxy.url
        try:
            svc.start_worker()
            time.sleep(6)
            slices = [events[i::6] for i in range(6)]
            svc.publish(jsonl(slices[0]))   # loads the script (a cut NOSCRIPT would prove nothing)
            svc.wait_consumed(len(slices[0]), timeout=120)
            cuts = [Cut.REPLY, Cut.REQUEST, Cut.REPLY, Cut.REQUEST]
            published = len(slices[0])
            for n, (cut, part) in enumerate(zip(cuts, slices[1:], strict=False), start=1):
                proxy.arm(cut)
                published += svc.publish(jsonl(part))
                proxy.wait_fired(n, timeout=60)
                svc.wait_consumed(published)   # the next cut falls on a new batch, not this retry
            svc.publish(jsonl(slices[-1]))
            svc.wait_consumed(len(events), timeout=180)
            time.sleep(1)
            assert proxy.fired == {Cut.REPLY: 2, Cut.REQUEST: 2}
            assert svc.pipeline_counter("consumed") == len(events)
            assert svc.pipeline_counter("redis_errors") >= len(cuts)
            assert_exact(svc, events)
        finally:
            svc.stop()


def test_a_rebalance_while_a_batch_is_held_neither_stalls_nor_loses(tmp_path: Path) -> None:
    """With a batch hold, a rebalance finds fetched messages gathered and not handed over. Faust
    waits for every tracked message to be acked before it gives partitions up (`wait_empty`):
    held messages must go out as a batch when the fetch loop stops, or the rebalance waits for
    ever (until the group's rebalance timeout throws the worker out, a minute of no progress)."""
    events = stream(2000, seed=5)
    hold_ms = 8000  # longer than the gap between chunks: the first worker always holds some
    svc = make_service(tmp_path, {"CALLKPI_BATCH_HOLD_MS": str(hold_ms)})
    try:
        svc.start_worker()
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        wait_until(lambda: "worker-1" in r.hgetall("ck:workers"), 60, svc.logs)
        time.sleep(4)  # in the group
        chunks = [events[i:i + 80] for i in range(0, len(events), 80)]
        for i, chunk in enumerate(chunks):
            svc.publish(jsonl(chunk))
            if i == 4:
                svc.start_worker()  # joins while the first worker holds the chunks before
            time.sleep(0.5)
        # Published over ~15 s; a worker holds a batch 8 s at most. A stalled rebalance waits
        # for acks that never come: nothing moves for a minute or more.
        svc.wait_consumed(len(events), timeout=45)
        time.sleep(1)
        assert svc.pipeline_counter("consumed") == len(events)
        assert_exact(svc, events)
        assert all(w.proc.poll() is None for w in svc.workers)
    finally:
        svc.stop()


def test_a_stop_while_redis_hangs_is_bounded_and_the_next_worker_is_exact(tmp_path: Path) -> None:
    """SIGTERM while Redis does not answer (a network partition, a frozen primary) and batches
    are in flight: a graceful stop would wait for their acks for ever, and only their commit
    gives those. The worker must give up after `CALLKPI_STOP_TIMEOUT_S` and exit as a crash
    would (nothing uncommitted was acked), so that the next worker redoes it exactly."""
    events = stream(3000, seed=11)
    stop_timeout_s = 5
    svc = make_service(tmp_path, {"CALLKPI_BATCH_MAX": "200",
                                  "CALLKPI_STOP_TIMEOUT_S": str(stop_timeout_s)})
    redis_pid = svc.infra.redis.proc.pid
    try:
        worker = svc.start_worker()
        r = redis.Redis.from_url(svc.infra.redis_url, decode_responses=True)
        wait_until(lambda: "worker-1" in r.hgetall("ck:workers"), 60, svc.logs)
        svc.publish(jsonl(events[:1000]))
        svc.wait_consumed(1000, timeout=120)
        os.kill(redis_pid, signal.SIGSTOP)  # connections stay open; nothing answers
        svc.publish(jsonl(events[1000:]))
        time.sleep(3)  # fetched, handed to the pipeline process, its commit waiting on Redis
        worker.proc.send_signal(signal.SIGTERM)
        try:
            code = worker.proc.wait(stop_timeout_s + 25)
        except Exception:
            raise AssertionError(f"the worker did not stop while Redis hung:\n{svc.logs()[-3000:]}") from None
        assert code != 0, "a stop that gave up on uncommitted batches must not look clean"
        assert "stop timed out" in svc.logs()
        os.kill(redis_pid, signal.SIGCONT)
        finish_with_a_new_worker(svc, events)
    finally:
        os.kill(redis_pid, signal.SIGCONT)
        svc.stop()
