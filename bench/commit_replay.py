"""Redis CPU per event of the commit script alone, on replayed commits (far less noisy than a live run).

    python bench/commit_replay.py capture --agents 150 --hours 4 --batch 5000 --out /tmp/c5000.pkl
    python bench/commit_replay.py replay /tmp/c5000.pkl [--repo PATH] [--rounds 3]
    python bench/commit_replay.py rollup /tmp/c5000.pkl

`capture` runs the worker's batch step (`Pipeline`, as `redis_profile.py`) against a fresh
redis-server and keeps every `CommitBatch` with its clock, pickled. `replay` encodes those
batches with a checkout's `stream.store.commit` (`--repo`, default this tree: e.g.
`git archive main | tar -x -C /tmp/main` for the tree before a change), then, per round, starts a
fresh redis-server, loads that checkout's commit.lua and `EVALSHA`s every commit in order
(the same order from an empty store gives the same versions and offsets, so every commit must
answer ok). Redis's CPU (user + system from /proc) over the EVALSHAs only, per event of the
captured run; the encoding happens before the clock starts and is timed on its own (this
process's CPU, `encode_us_per_event`: the pipeline process's share of a commit). `rollup` replays once, then times
what a roll-up of hours would cost (docs/scaling.md, "Fewer counter fields per batch"): every
minute hash left summed once per counter into three hashes (as into `h:`, `d:` and `t:`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPO = Path(sys.argv[sys.argv.index("--repo") + 1]).resolve() if "--repo" in sys.argv else ROOT
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(ROOT / "bench"))

import redis  # noqa: E402


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def capture(args: argparse.Namespace) -> None:
    from redis_profile import bench_pipeline
    from stages import sim_messages

    from stream.cli.embedded import free_port, start_redis
    from stream.store.redis_store import Store

    messages = sim_messages(args.agents, args.hours)
    commits: list[tuple[int, Any]] = []
    original = Store.commit

    async def recording(self: Store, batch: Any, now_ms: int) -> None:
        encoded, batch.encoded = batch.encoded, None
        commits.append((now_ms, pickle.dumps(batch)))
        batch.encoded = encoded
        await original(self, batch, now_ms)

    Store.commit = recording  # type: ignore[method-assign]
    port = free_port()
    server = start_redis(port, Path(tempfile.mkdtemp(prefix="commit-capture-")))

    async def drive() -> str:
        store = Store(f"redis://127.0.0.1:{port}/0")
        pipeline = bench_pipeline(store)
        for i in range(0, len(messages), args.batch):
            await pipeline.handle(messages[i:i + args.batch])
        await store.close()
        return store.layout.prefix

    try:
        prefix = asyncio.run(drive())
    finally:
        server.stop()
    Path(args.out).write_bytes(pickle.dumps({"events": len(messages), "batch": args.batch,
                                             "sim": f"{args.agents} agents, {args.hours} h",
                                             "prefix": prefix, "commits": commits}))
    print(f"{len(messages):,} events, {len(commits)} commits → {args.out}")


def store_digest(r: redis.Redis) -> str:
    """A hash of everything the replay left in Redis (keys, types, contents, whether each
    expires): two encodings of the same commits must leave the same digest."""
    import hashlib
    h = hashlib.sha256()
    for key in sorted(r.scan_iter(count=10_000)):
        raw = r.type(key)
        kind = raw.decode() if isinstance(raw, bytes) else str(raw)
        if kind == "hash":
            value: object = sorted(r.hgetall(key).items())
        elif kind == "string":
            value = r.get(key)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(r.smembers(key))
        else:
            value = kind
        h.update(repr((key, kind, value, r.pttl(key) > 0)).encode())
    return h.hexdigest()[:16]


def replay(args: argparse.Namespace) -> None:
    from stream.cli.embedded import free_port, start_redis
    from stream.store import commit as commit_module
    from stream.store.layout import Layout

    cap = pickle.loads(Path(args.capture).read_bytes())
    layout = Layout(cap["prefix"])
    batches = [(now, pickle.loads(b)) for now, b in cap["commits"]]
    encode_cpu = time.process_time()
    encoded = [commit_module.encode(batch, layout, now) for now, batch in batches]
    encode_cpu = time.process_time() - encode_cpu
    n = cap["events"]
    payload = sum(len(a[0]) for a in encoded)
    total = sum(sum(len(x) for x in a) for a in encoded)
    rounds: list[float] = []
    for _ in range(args.rounds):
        port = free_port()
        server = start_redis(port, Path(tempfile.mkdtemp(prefix="commit-replay-")))
        try:
            r = redis.Redis(port=port)
            for item in args.config:
                name, _, value = item.partition("=")
                r.config_set(name, value)
            sha = r.script_load(Path(args.lua).read_text() if args.lua else commit_module.COMMIT_LUA)
            cpu0 = cpu_s(server.proc.pid)
            for a in encoded:
                result = r.evalsha(sha, 0, *a)
                if result[0] != b"ok" and not args.lua:
                    raise SystemExit(f"commit answered {result!r}")
            rounds.append((cpu_s(server.proc.pid) - cpu0) / n * 1e6)
            mem = r.info("memory")["used_memory"]
            digest = store_digest(r)
            stats = r.info("commandstats")
        finally:
            server.stop()
    out = {"repo": str(REPO), "capture": args.capture, "sim": cap["sim"], "batch": cap["batch"],
           "events": n, "commits": len(encoded),
           "rounds_us_per_event": [round(x, 1) for x in rounds], "min_us_per_event": round(min(rounds), 1),
           "encode_us_per_event": round(encode_cpu / n * 1e6, 1),
           "payload_bytes_per_event": round(payload / n), "args_bytes_per_event": round(total / n),
           "redis_used_mb": round(mem / 2**20, 1), "store_digest": digest,
           "calls_per_event": {k.removeprefix("cmdstat_"): round(v["calls"] / n, 3)
                               for k, v in sorted(stats.items(), key=lambda kv: -kv[1]["calls"])}, "load": os.getloadavg()[0],
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(out))


ROLL_UP = """
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  local sums, order = {}, {}
  for i = 1, #flat, 2 do
    local name = string.match(flat[i], '^%d+:(.+)$')
    if name then
      if sums[name] == nil then sums[name] = 0 order[#order + 1] = name end
      sums[name] = sums[name] + tonumber(flat[i + 1])
    end
  end
  local out = {}
  for _, name in ipairs(order) do out[#out + 1] = '7:' .. name out[#out + 1] = string.format('%.17g', sums[name]) end
  if #out > 0 then
    for _, kind in ipairs({'h', 'd', 't'}) do redis.call('HSET', 'rolled:' .. kind .. ':' .. key, unpack(out)) end
  end
end
return 1
"""


def rollup(args: argparse.Namespace) -> None:
    from stream.cli.embedded import free_port, start_redis
    from stream.store import commit as commit_module
    from stream.store.layout import Layout

    cap = pickle.loads(Path(args.capture).read_bytes())
    layout = Layout(cap["prefix"])
    encoded = [commit_module.encode(pickle.loads(b), layout, now) for now, b in cap["commits"]]
    port = free_port()
    server = start_redis(port, Path(tempfile.mkdtemp(prefix="commit-rollup-")))
    try:
        r = redis.Redis(port=port, socket_timeout=300)
        sha = r.script_load(commit_module.COMMIT_LUA)
        for a in encoded:
            r.evalsha(sha, 0, *a)
        keys = list(r.scan_iter(match=cap["prefix"] + "m:*", count=1000))
        fields = sum(r.hlen(k) for k in keys)
        cpu0 = cpu_s(server.proc.pid)
        for i in range(0, len(keys), 20):
            r.eval(ROLL_UP, len(keys[i:i + 20]), *keys[i:i + 20])
        us = (cpu_s(server.proc.pid) - cpu0) / cap["events"] * 1e6
    finally:
        server.stop()
    print(json.dumps({"capture": args.capture, "scope_hours": len(keys),
                      "fields_per_scope_hour": round(fields / len(keys)),
                      "rollup_us_per_event": round(us, 2), "load": os.getloadavg()[0],
                      "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--agents", type=int, default=150)
    c.add_argument("--hours", type=float, default=4.0)
    c.add_argument("--batch", type=int, default=5000)
    c.add_argument("--out", required=True)
    p = sub.add_parser("replay")
    p.add_argument("capture")
    p.add_argument("--repo", type=Path, default=ROOT)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--lua", help="this script instead of the checkout's commit.lua (a variant to time)")
    p.add_argument("--config", action="append", default=[], help="NAME=VALUE: CONFIG SET first")
    u = sub.add_parser("rollup")
    u.add_argument("capture")
    args = ap.parse_args()
    {"capture": capture, "replay": replay, "rollup": rollup}[args.cmd](args)


if __name__ == "__main__":
    main()
