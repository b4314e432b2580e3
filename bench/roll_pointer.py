"""What a per-scope roll pointer would save Redis per event: a design prototype, timed on
replayed commits (docs/scaling.md, "Fewer counter fields per batch").

    python bench/roll_pointer.py /tmp/c100.pkl [--grace-minutes 1] [--every-minutes 1] [--rounds 2]

Replays a `commit_replay.py capture` twice on fresh redis-servers, timing Redis's CPU:

- `today`: every commit as the worker encodes it (each delta to its minute, hour, day and
  total hash);
- `pointer`: each scope has a pointer `p` (every minute of the scope up to `p` is rolled up).
  A delta for a minute after `p` goes to the minute hash alone (*pending*); one for a minute at
  or before `p` (a late event) goes everywhere, as today. Before each commit, the scope-minutes
  that closed (`minute <= newest minute of the batch - grace - 1`, in steps of `--every-minutes`:
  the horizon is the last minute of a whole step) are rolled up: their fields
  read from the minute hash (`HMGET` of the counters written) and summed into the hour, day and total
  hashes (one `HMGET` + `HSET` per hash), and the pointers of every scope rolled or in the batch
  move to that horizon. With `--direct-span-minutes N`, a batch whose minutes span N or more
  moves the horizon to its newest minute: everything it holds goes direct, as today (meant for
  a backlog, where one batch already sums many minutes per hour field; built, the worker's
  `caught_up` flags would be the sign). Here the roll-up is a second script call before the commit, and the
  pointers live in this process (one writer); built, both would be inside the commit script.

Exactness check: after the last commit everything pending is rolled up, and every hour, day
and total hash must hold what `today` wrote (float counters to 1e-9 relative). The minute
hashes are the same by construction. A team move rolls its agent and both teams up whole first
(their pointers then pass every minute they hold). What the prototype leaves out: `retracted:`
total fields (what late events take back), and what readers would have to add (the pending minutes of a scope, at most the grace plus one minute when the
worker keeps up).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

import orjson  # noqa: E402
import redis  # noqa: E402
from commit_replay import cpu_s  # noqa: E402

from stream.cli.embedded import free_port, start_redis  # noqa: E402
from stream.kpi.catalog import FLOAT_COUNTERS  # noqa: E402
from stream.kpi.windows import DAY_MS, HOUR_MS, MINUTE_MS, floor_to, local_day_of  # noqa: E402
from stream.store import commit as commit_module  # noqa: E402
from stream.store.layout import Layout, hour_key_expiry, minute_key_expiry  # noqa: E402

ROLL_LUA = """
-- ARGV[1]: {"floats": {name: true}, "items": [[m key, minute index, {{target key, field
-- prefix or ''}, ...}, [counter, ...]], ...]}: each scope-minute's fields summed into its
-- targets (hour, day, total), then one HMGET + HSET per target.
local plan = cjson.decode(ARGV[1])
local floats = plan.floats
local sums, order = {}, {}
for _, it in ipairs(plan.items) do
  local counters, names = it[4], {}
  for i, c in ipairs(counters) do names[i] = it[2] .. ':' .. c end
  local vals = redis.call('HMGET', it[1], unpack(names))
  for i, v in ipairs(vals) do
    if v then
      local c = counters[i]
      for _, t in ipairs(it[3]) do
        local s = sums[t[1]]
        if s == nil then s = {} sums[t[1]] = s order[#order + 1] = t[1] end
        local f = t[2] == '' and c or (t[2] .. ':' .. c)
        s[f] = (s[f] or 0) + tonumber(v)
      end
    end
  end
end
for _, key in ipairs(order) do
  local s, fields = sums[key], {}
  for f in pairs(s) do fields[#fields + 1] = f end
  local cur = redis.call('HMGET', key, unpack(fields))
  local out = {}
  for i, f in ipairs(fields) do
    local n = s[f] + (tonumber(cur[i]) or 0)
    local c = string.match(f, '^%d+:(.+)$') or f
    out[#out + 1] = f
    out[#out + 1] = floats[c] and string.format('%.17g', n) or string.format('%d', n)
  end
  redis.call('HSET', key, unpack(out))
end
return #order
"""


def _item(layout: Layout, scope: str, minute: int, names: set[str], now_ms: int) -> list[Any]:
    """One scope-minute to roll up: its minute hash, minute index, targets and counters (those
    its pending deltas named: a prototype with one writer knows them; built, with several
    writers, the script would read the hash's fields of that minute itself)."""
    return [layout.minute_key(scope, minute), str((minute % HOUR_MS) // MINUTE_MS),
            _targets(layout, scope, minute, now_ms), sorted(names)]


def _targets(layout: Layout, scope: str, minute: int, now_ms: int) -> list[list[str]]:
    """The hour, day and total hashes (and field prefixes) a scope-minute's deltas go to."""
    P, day = layout.prefix, local_day_of(minute, layout.tz)
    out = [[f"{P}d:{scope}:{day.date}", str(day.day)], [f"{P}t:{scope}", ""]]
    if hour_key_expiry(minute) > now_ms:
        out.append([f"{P}h:{scope}:{floor_to(minute, DAY_MS)}", str((minute % DAY_MS) // HOUR_MS)])
    return out


def _merge_minutes(a: dict[str, Any], b: dict[str, Any], prefix: str) -> None:
    """Add the pending-only encoding's minute-hash writes (increments, expiries, newest-minute
    marks, promotions, scope scores) to the direct encoding's payload."""
    m = f"{prefix}m:"
    at = {x[0]: x for x in a["incr"]}
    for key, ints, floats in b["incr"]:
        if not key.startswith(m):
            continue
        if key in at:  # a late direct minute and pending minutes of one hour: distinct fields
            at[key][1] += ints
            at[key][2] += floats
        else:
            a["incr"].append([key, ints, floats])
            at[key] = a["incr"][-1]
    a["promote"] = [i + 1 for i, x in enumerate(a["incr"]) if x[0].startswith(m)]
    a["expire"] += [x for x in b["expire"] if x[0].startswith(m)]
    a["newest"] += b["newest"]
    a["scopes"] += b["scopes"]
    a["months"] += b["months"]


def replay(commits: list[tuple[int, bytes]], layout: Layout, events: int, pointer: bool,
           grace_minutes: int, every_minutes: int, direct_span_minutes: int) -> dict[str, Any]:
    port = free_port()
    server = start_redis(port, Path(tempfile.mkdtemp(prefix="roll-pointer-")))
    try:
        r = redis.Redis(port=port, socket_timeout=300)
        commit_sha = r.script_load(commit_module.COMMIT_LUA)
        roll_sha = r.script_load(ROLL_LUA)
        floats = {c: True for c in FLOAT_COUNTERS}
        p: dict[str, int] = {}
        newest: dict[str, int] = {}  # each scope's newest minute with data
        pending: defaultdict[str, dict[int, set[str]]] = defaultdict(dict)  # scope → minute → counters
        prepared: list[tuple[list[Any] | None, list[Any]]] = []
        rolled = 0
        last_now = 0
        for now, raw in commits:  # encoded ahead: the clock below times Redis alone
            batch = pickle.loads(raw)
            last_now = now
            if not pointer or not batch.counters:
                prepared.append((None, commit_module.encode(batch, layout, now)))
                continue
            first = min(minute for _, minute in batch.counters)
            last = max(minute for _, minute in batch.counters)
            closed = last - (grace_minutes + 1) * MINUTE_MS
            horizon = floor_to(closed + MINUTE_MS, every_minutes * MINUTE_MS) - MINUTE_MS
            if direct_span_minutes and last - first >= direct_span_minutes * MINUTE_MS:
                horizon = last
            # a team move first rolls its agent and both teams up whole: the move then takes
            # minutes and hours alike, and no moved minute is after a team's pointer
            whole = {f"{kind}:{x}" for agent, old, new in batch.team_moves
                     for kind, x in (("agent", agent), ("team", old), ("team", new)) if x}
            items = [_item(layout, s, i, names, now) for s, minutes in pending.items()
                     for i, names in sorted(minutes.items()) if i <= horizon or s in whole]
            for s in list(pending):
                pending[s] = {i: n for i, n in pending[s].items() if i > horizon and s not in whole}
                if not pending[s]:
                    del pending[s]
                p[s] = max(p.get(s, horizon), horizon)
            for s in whole:
                p[s] = max(p.get(s, horizon), horizon, newest.get(s, horizon))
            for s, i in batch.counters:
                newest[s] = max(newest.get(s, i), i)
            for s, _ in batch.counters:
                p[s] = max(p.get(s, horizon), horizon)
            rolled += len(items)
            direct = {k: v for k, v in batch.counters.items()
                      if k[1] <= p[k[0]] or minute_key_expiry(k[1]) <= now}
            later = {k: v for k, v in batch.counters.items() if k not in direct}
            for (s, i), deltas in later.items():
                pending[s].setdefault(i, set()).update(deltas)
            full = batch.counters
            batch.counters = direct
            args = commit_module.encode(batch, layout, now)
            batch.counters = full
            if later:
                a = orjson.loads(args[0])
                _merge_minutes(a, orjson.loads(commit_module.encode(
                    commit_module.CommitBatch(counters=later, notify=False), layout, now)[0]),
                    layout.prefix)
                args[0] = orjson.dumps(a)
            roll = [orjson.dumps({"floats": floats, "items": items})] if items else None
            prepared.append((roll, args))
        cpu0 = cpu_s(server.proc.pid)
        for roll, args in prepared:
            if roll:
                r.evalsha(roll_sha, 0, *roll)
            answer = r.evalsha(commit_sha, 0, *args)
            if answer[0] != b"ok":
                raise SystemExit(f"commit answered {answer!r}")
        us = (cpu_s(server.proc.pid) - cpu0) / events * 1e6
        final = [_item(layout, s, i, names, last_now) for s, minutes in pending.items()
                 for i, names in sorted(minutes.items())]
        cpu1 = cpu_s(server.proc.pid)
        if final:
            r.evalsha(roll_sha, 0, orjson.dumps({"floats": floats, "items": final}))
        final_us = (cpu_s(server.proc.pid) - cpu1) / events * 1e6
        snapshot = {k.decode(): r.hgetall(k) for pat in ("h:*", "d:*", "t:*")
                    for k in r.scan_iter(match=layout.prefix + pat, count=1000)}
        stats = r.info("commandstats")
    finally:
        server.stop()
    return {"us_per_event": us, "final_rollup_us_per_event": final_us, "rolled": rolled + len(final),
            "snapshot": snapshot,
            "calls_per_event": {k.removeprefix("cmdstat_"): round(v["calls"] / events, 2)
                                for k, v in sorted(stats.items(), key=lambda kv: -kv[1]["calls"])[:8]}}


def same(a: dict[str, dict[bytes, bytes]], b: dict[str, dict[bytes, bytes]]) -> list[str]:
    """Differences between two snapshots of the hour, day and total hashes (retracted fields
    and zeros aside)."""
    out = []
    for key in sorted(set(a) | set(b)):
        fa = {f: float(v) for f, v in a.get(key, {}).items() if not f.startswith(b"retracted:") and float(v)}
        fb = {f: float(v) for f, v in b.get(key, {}).items() if not f.startswith(b"retracted:") and float(v)}
        for f in set(fa) | set(fb):
            x, y = fa.get(f, 0.0), fb.get(f, 0.0)
            if abs(x - y) > 1e-9 * max(1.0, abs(x)):
                out.append(f"{key} {f.decode()}: {x} vs {y}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--grace-minutes", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--direct-span-minutes", type=int, default=0,
                    help="a batch whose minutes span this much rolls its scopes up to its newest "
                         "minute and writes everything directly, as today (0: never). A poor "
                         "sign of a backlog: a live batch's counters often span minutes (a call's "
                         "are placed at its own minutes)")
    ap.add_argument("--every-minutes", type=int, default=1,
                    help="roll up in steps of this many minutes (readers then add up to that many "
                         "pending minutes plus the grace)")
    args = ap.parse_args()
    cap = pickle.loads(Path(args.capture).read_bytes())
    layout = Layout(cap["prefix"])
    rounds: dict[str, list[float]] = {"today": [], "pointer": []}
    extra: dict[str, Any] = {}
    for _ in range(args.rounds):  # alternated
        t = replay(cap["commits"], layout, cap["events"], False, args.grace_minutes, args.every_minutes,
                   args.direct_span_minutes)
        q = replay(cap["commits"], layout, cap["events"], True, args.grace_minutes, args.every_minutes,
                   args.direct_span_minutes)
        diff = same(t["snapshot"], q["snapshot"])
        if diff:
            raise SystemExit(f"{len(diff)} fields differ, e.g. {diff[:5]}")
        rounds["today"].append(round(t["us_per_event"], 1))
        rounds["pointer"].append(round(q["us_per_event"], 1))
        extra = {"final_rollup_us_per_event": round(q["final_rollup_us_per_event"], 2),
                 "scope_minutes_rolled": q["rolled"], "calls_per_event_today": t["calls_per_event"],
                 "calls_per_event_pointer": q["calls_per_event"]}
    print(json.dumps({"capture": args.capture, "sim": cap["sim"], "batch": cap["batch"],
                      "events": cap["events"], "commits": len(cap["commits"]),
                      "grace_minutes": args.grace_minutes, "every_minutes": args.every_minutes,
                      "direct_span_minutes": args.direct_span_minutes,
                      "redis_us_per_event": rounds, **extra, "load": os.getloadavg()[0],
                      "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))


if __name__ == "__main__":
    main()
