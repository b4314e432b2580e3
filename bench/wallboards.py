"""Many wallboards on one `callkpi serve` (issue 9, item 16), with the page's real request pattern.

    python bench/wallboards.py [--clients 500 --agents 200 --seconds 90 --procs 2]

A real pipeline (embedded broker, redis-server, one worker, one `serve`) is fed by the simulator
in real time (a shift that began 15 minutes ago; each event is published when it happens), and
`--clients` wallboards run what `stream/readers/wallboard/app.js` runs: one EventSource on
/api/v1/stream; on every `update` a refresh debounced by 300 ms and at most one per second; a
refresh every 10 s whatever the stream does; a refresh is /kpis, /live, /agents (every page),
/targets, /compliance, /campaigns (every page) in parallel, and /scopes once a minute. The boards
are spread over the center, every campaign and every team. Measured: for every store commit
(seen by the bench's own subscription) the delay until each board got its `update` (boards and
serve share the machine: a starved board process adds its own delay), serve's own log of how
long after an announcement each client was written, and the latency and status of every API
request. Writes bench/results.json["wallboards_<clients>"].
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import cpu_s, machine, rss_mb, save_result, spawn, stop_all  # noqa: E402  (bench/run.py, beside this)

from stream.cli.embedded import create_topics, free_port, start_infra, wait_for_port  # noqa: E402
from stream.sim import FaultConfig, SimConfig, generate  # noqa: E402

TOPIC = "dialer.events"
MIN = 60_000
DEBOUNCE_S, MIN_REFRESH_S, POLL_S, SCOPES_EVERY_S = 0.3, 1.0, 10.0, 60.0  # as in app.js
NEXT = re.compile(rb'"next_offset": (\d+)')
CONFIG = """timezone = "UTC"
[[targets]]
name = "Connect rate today"
kpi = "connect_rate"
scope = "center"
window = "today"
goal = 0.3
[[targets]]
name = "Abandon per campaign"
kpi = "abandon_rate"
scope = "campaign:*"
window = "today"
goal = 0.02
direction = "lower"
[costs]
agent_cost_per_hour = 21.0
"""


# -- one wallboard ------------------------------------------------------------------------------

class Board:
    def __init__(self, session: Any, base: str, scope: str, log: dict[str, list]) -> None:
        self.session, self.base, self.scope, self.log = session, base, scope, log
        self.updates: list[float] = []
        self.in_flight = self.pending = False
        self.timer: asyncio.TimerHandle | None = None
        self.last_refresh = 0.0
        self.scopes_at = -SCOPES_EVERY_S
        self.stopping = False

    async def get(self, path: str, params: dict[str, str]) -> bytes:
        t0 = time.monotonic()
        try:
            async with self.session.get(f"{self.base}/api/v1/{path}", params=params) as r:
                body = await r.read()
                status = r.status
        except Exception as exc:  # noqa: BLE001 - a failed request is a figure, not a crash
            body, status = b"", 0
            if self.stopping:  # cut off by the end of the run: not a figure
                return body
            if len(self.log["failures"]) < 20:
                self.log["failures"].append(f"{path}: {type(exc).__name__} {exc}"[:200])
        self.log["requests"].append((path, status, time.monotonic() - t0))
        return body

    async def paged(self, path: str, params: dict[str, str]) -> None:
        body = await self.get(path, params)
        for _ in range(100):
            m = NEXT.search(body)
            if not m:
                return
            body = await self.get(path, {**params, "offset": m.group(1).decode()})

    async def refresh(self) -> None:
        if self.in_flight:
            self.pending = True
            return
        self.in_flight = True
        try:
            s = self.scope
            reqs = [self.get("kpis", {"scope": s, "window": "today"}), self.get("live", {"scope": s}),
                    self.paged("agents", {"scope": s, "window": "today"}), self.get("targets", {}),
                    self.get("compliance", {}), self.paged("campaigns", {"window": "today"})]
            if time.monotonic() - self.scopes_at > SCOPES_EVERY_S:
                self.scopes_at = time.monotonic()
                reqs.append(self.get("scopes", {}))
            await asyncio.gather(*reqs)
        finally:
            self.in_flight = False
            self.last_refresh = time.monotonic()
            if self.pending:
                self.pending = False
                self.schedule(0)

    def schedule(self, delay: float) -> None:
        if self.timer is not None:
            return
        wait = max(delay, MIN_REFRESH_S - (time.monotonic() - self.last_refresh), 0)

        def fire() -> None:
            self.timer = None
            if not self.stopping:
                asyncio.ensure_future(self.refresh())
        self.timer = asyncio.get_running_loop().call_later(wait, fire)

    async def stream(self, stop: asyncio.Event) -> None:
        import aiohttp
        while not stop.is_set():
            try:
                async with self.session.get(f"{self.base}/api/v1/stream",
                                            timeout=aiohttp.ClientTimeout(total=None)) as r:
                    if r.status != 200:
                        self.log["stream_refused"].append(r.status)
                        await asyncio.sleep(2)
                        continue
                    self.schedule(0)
                    async for line in r.content:
                        if line.startswith(b"event: update"):
                            self.updates.append(time.time())
                            self.schedule(DEBOUNCE_S)
                        if stop.is_set():
                            return
            except Exception:  # noqa: BLE001
                self.log["stream_errors"].append(time.time())
                await asyncio.sleep(1)

    async def poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(POLL_S)
            self.schedule(0)


def run_boards(base: str, scopes: list[str], seconds: float, out: Any) -> None:
    """One process's share of the boards; sends (updates per board, requests, stream problems)."""
    import aiohttp

    async def main() -> dict:
        log: dict[str, list] = {"requests": [], "stream_refused": [], "stream_errors": [], "failures": []}
        stop = asyncio.Event()
        conn = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as session:
            boards = [Board(session, base, s, log) for s in scopes]
            tasks = [asyncio.ensure_future(t) for b in boards for t in (b.stream(stop), b.poll(stop))]
            await asyncio.sleep(seconds)
            for b in boards:
                b.stopping = True
            await asyncio.sleep(2)  # let the requests in flight finish (they are counted)
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {"updates": [b.updates for b in boards], **log}
    out.put(asyncio.run(main()))


# -- the pipeline and its feed ------------------------------------------------------------------

def quantiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=100) if len(xs) > 1 else [xs[0]] * 99
    return {"p50": round(q[49], 4), "p99": round(q[98], 4), "max": round(xs[-1], 4), "n": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=90)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="callkpi-wallboards-"))
    infra = start_infra(workdir=workdir)
    procs: list[subprocess.Popen] = []
    try:
        create_topics(infra.bootstrap, {TOPIC: 4, "dialer.events.dlq": 1})
        (workdir / "callkpi.toml").write_text(CONFIG)
        env = {"CALLKPI_BOOTSTRAP": infra.bootstrap, "CALLKPI_REDIS_URL": infra.redis_url,
               "CALLKPI_SESSION_TIMEOUT_S": "6", "CALLKPI_CONFIG": str(workdir / "callkpi.toml")}
        http_port = free_port()
        procs.append(spawn([sys.executable, "-m", "stream.cli.main", "worker"], env, workdir / "worker.log"))
        serve = spawn([sys.executable, "-m", "stream.cli.main", "serve", "--port", str(http_port)],
                      env, workdir / "serve.log")
        procs.append(serve)
        wait_for_port(http_port, 30, proc=serve)
        base = f"http://127.0.0.1:{http_port}"

        from kafka import KafkaProducer
        now = int(time.time() * 1000)
        cfg = SimConfig(seed=9, agents=args.agents, hours=15 / 60 + 1 + args.seconds / 3600,
                        start_ms=now - 15 * MIN, faults=FaultConfig())
        deliveries = iter(generate(cfg))
        producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks=1, linger_ms=20)
        r = redis.Redis.from_url(infra.redis_url, decode_responses=True)
        sent, pending = 0, None
        for d in deliveries:  # the shift so far
            if d.deliver_ms > now:
                pending = d
                break
            producer.send(TOPIC, key=d.key, value=d.value)
            sent += 1
        producer.flush()
        while float(r.hget("ck:pipeline", "consumed") or 0) < sent:
            time.sleep(0.2)
        print(f"prefilled {sent:,} events; {args.clients} boards for {args.seconds:.0f} s", file=sys.stderr)

        stop = threading.Event()

        def feed() -> None:
            """Each event published when it happens, as a dialer would."""
            nonlocal sent
            d = pending
            while d is not None and not stop.is_set():
                delay = d.deliver_ms / 1000 - time.time()
                if delay > 0:
                    time.sleep(min(delay, 0.2))
                    continue
                producer.send(TOPIC, key=d.key, value=d.value)
                sent += 1
                d = next(deliveries, None)
        commits: list[float] = []

        def watch() -> None:
            sub = redis.Redis.from_url(infra.redis_url).pubsub()
            sub.subscribe("ck:updates")
            while not stop.is_set():
                msg = sub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if msg:
                    commits.append(time.time())
            sub.close()
        threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=watch, daemon=True)]
        for t in threads:
            t.start()

        known = json.loads(__import__("urllib.request").request.urlopen(base + "/api/v1/scopes").read())
        spread = ["center"] + [f"campaign:{c}" for c in known["campaign"]] + [f"team:{t}" for t in known["team"]]
        scopes = [spread[i % len(spread)] for i in range(args.clients)]
        queue: Any = mp.get_context("spawn").Queue()
        shares = [scopes[i::args.procs] for i in range(args.procs)]
        cpu0, t0 = cpu_s(serve.pid), time.time()
        workers = [mp.get_context("spawn").Process(target=run_boards, args=(base, share, args.seconds, queue))
                   for share in shares]
        for w in workers:
            w.start()
        parts = [queue.get(timeout=args.seconds + 300) for _ in workers]
        t1 = time.time()
        serve_cpu = cpu_s(serve.pid) - cpu0
        serve_rss = rss_mb(serve.pid)
        for w in workers:
            w.join()
        stop.set()
        for t in threads:
            t.join(timeout=5)
        producer.close()

        reports = [m.groupdict() for m in re.finditer(
            r"stream: (?P<clients>\d+) clients, update delivered p50 (?P<p50>[\d.]+) s, "
            r"p99 (?P<p99>[\d.]+) s, max (?P<max>[\d.]+) s", (workdir / "serve.log").read_text())]
        boards = [u for p in parts for u in p["updates"]]
        requests = [q for p in parts for q in p["requests"]]
        # Every commit after the boards settled (10 s) and before the end (3 s margin): how long
        # until each board had its `update`.
        window = [c for c in commits if t0 + 10 <= c <= t1 - 3]
        delays: list[float] = []
        late_boards = 0
        for updates in boards:
            worst, j = 0.0, 0
            for c in window:
                while j < len(updates) and updates[j] < c:
                    j += 1
                waited = (updates[j] - c) if j < len(updates) else (t1 - c)
                delays.append(waited)
                worst = max(worst, waited)
            late_boards += worst > 2.0
        by_path: dict[str, list[float]] = {}
        for path, _status, dt in requests:
            by_path.setdefault(path, []).append(dt)
        statuses: dict[str, int] = {}
        for _, status, _ in requests:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        result = {
            "clients": args.clients, "agents": args.agents, "seconds": args.seconds,
            "client_processes": args.procs, "scopes_spread": len(spread),
            "commits_measured": len(window), "events_fed": sent,
            "update_delay_s": quantiles(delays),
            "boards_with_an_update_later_than_2s": late_boards,
            "serve_side_delivery_reports_s": [{k: float(v) for k, v in r.items()} for r in reports],
            "api_latency_s": quantiles([dt for _, _, dt in requests]),
            "api_latency_by_path_s": {p: quantiles(v) for p, v in sorted(by_path.items())},
            "requests": len(requests), "requests_per_s": round(len(requests) / (t1 - t0), 1),
            "statuses": statuses,
            "stream_refused": sum(len(p["stream_refused"]) for p in parts),
            "stream_errors": sum(len(p["stream_errors"]) for p in parts),
            "request_failures_sample": sorted({f for p in parts for f in p["failures"]})[:10],
            "serve_cpu_share": round(serve_cpu / (t1 - t0), 2), "serve_rss_mb": round(serve_rss, 1),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d"),
        }
        print(json.dumps(result, indent=2))
        if not args.no_save:
            save_result(f"wallboards_{args.clients}", result)
    finally:
        stop_all(procs, 10)
        infra.stop()


if __name__ == "__main__":
    main()
