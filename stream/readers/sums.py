"""Window sums computed inside Redis, for readers that need many scopes at once (a scrape).

`Store.window_counters` returns every field of every bucket hash a window touches and sums in
Python: right for one scope, too slow for thousands (a scrape of 5,000 agents and ~420 teams).
Here a read-only script sums the needed fields server side, every bucket hash once for all
windows, and returns a few numbers per scope. The buckets read are the same
(`stream.kpi.windows.decompose`), so the sums are the same.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from stream.kpi.catalog import COUNTER_NAMES, KPI_BY_NAME
from stream.kpi.scopes import Scope
from stream.kpi.windows import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    LocalDay,
    Range,
    decompose,
    floor_to,
    local_date,
    local_day_of,
    local_start,
)
from stream.readers.query import GROUP_KINDS, Openings, open_share
from stream.store.layout import BOUNDED_KINDS, day_field

ALL_COUNTERS: tuple[str, ...] = tuple(sorted(COUNTER_NAMES))


def counters_of(kpis: tuple[str, ...]) -> tuple[str, ...]:
    """The stored counters the given KPIs are computed from (what has to be read)."""
    return tuple(sorted({c for k in kpis for c in (*KPI_BY_NAME[k].numerator,
                                                    *KPI_BY_NAME[k].denominator)}))


WINDOW_SUMS_LUA = """
-- Read-only. KEYS: the same bucket hashes for every scope, scope after scope.
-- ARGV[1]: {"counters": [name, ...], "groups": [[[index, [window, ...]], ...] per bucket]}:
-- in each bucket hash the fields <index>:<counter> are summed into the (window, counter) sums.
-- Returns #windows * #counters sums per scope (window-major), in one space-separated string
-- (one reply instead of thousands: parsing replies dominated a scrape), each number with a
-- double's precision.
-- A field's sums are looked up when the field is first met (`resolve`), not built for every
-- field a bucket could hold (60 minutes x every counter, thousands of strings per call), and a
-- field that feeds one sum (one window) adds without a loop.
local plan = cjson.decode(ARGV[1])
local counters, nc = plan.counters, #plan.counters
local groups = #plan.groups
-- the bucket hashes' entries, then those of plan.alt: an hour hash read with the current hour too
local entries = {}
for g = 1, groups do entries[g] = plan.groups[g] end
for j, e in ipairs(plan.alt or {}) do entries[groups + j] = e end
local column = {}
for c = 1, nc do column[counters[c]] = c end
local windows, fields = {}, {}
for g = 1, #entries do
  local ws = {}
  for _, entry in ipairs(entries[g]) do ws[entry[1]] = entry[2] end
  windows[g], fields[g] = ws, #entries[g] * nc
end
local one, many, names = {}, {}, {}
for g = 1, #entries do one[g], many[g] = {}, {} end
local function resolve(g, f)
  local colon = string.find(f, ':', 1, true)
  local ws = colon and windows[g][string.sub(f, 1, colon - 1)]
  local c = colon and column[string.sub(f, colon + 1)]
  if not (ws and c) then
    one[g][f] = false
    many[g][f] = false
  elseif #ws == 1 then
    one[g][f] = ws[1] * nc + c
  else
    local t = {}
    for _, w in ipairs(ws) do t[#t + 1] = w * nc + c end
    one[g][f] = false
    many[g][f] = t
  end
end
local function add(sums, g, f, v)
  local slot = one[g][f]
  if slot == nil then
    resolve(g, f)
    slot = one[g][f]
  end
  if slot then
    sums[slot] = sums[slot] + tonumber(v)
  else
    local t = many[g][f]
    if t then
      v = tonumber(v)
      for _, s in ipairs(t) do sums[s] = sums[s] + v end
    end
  end
end
local function names_of(g)
  if not names[g] then
    local ns = {}
    for _, entry in ipairs(entries[g]) do
      for c = 1, nc do ns[#ns + 1] = entry[1] .. ':' .. counters[c] end
    end
    names[g] = ns
  end
  return names[g]
end
local row = '%.17g' .. string.rep(' %.17g', plan.n - 1)  -- (Lua 5.1's rep has no separator)
-- plan.short[g] = {mark, k, h, hour, alt}: a minute hash whose windows all read its first k
-- minutes (`today` in the current hour). When the hour's newest written minute (its `mx:` key,
-- at offset `mark` among the scope's keys) is before k, those minutes hold all of the hour so
-- far, so the hour's fields answer instead: the day's hour hash (group `h`, or the key at
-- offset `hour` when no group reads it) is read with the entries of alt group `alt` (its own
-- and this hour's), and the minute hash not at all. No `mx:` key (a store written before
-- them) or a newer minute: the minutes, as before.
local short, stride = {}, groups
for g, s in pairs(plan.short or {}) do  -- (history.py's plans have none)
  short[tonumber(g)] = s
  stride = stride + (s.hour > 0 and 2 or 1)
end
local function read(sums, key, g)
  -- A small hash is a listpack: HMGET scans it once per field, HGETALL once in all.
  if redis.call('HLEN', key) <= 2 * fields[g] or redis.call('OBJECT', 'ENCODING', key) ~= 'hashtable' then
    local kv, o = redis.call('HGETALL', key), one[g]
    for j = 1, #kv, 2 do
      local slot = o[kv[j]]  -- add(), inlined for the common case: known, one sum
      if slot then sums[slot] = sums[slot] + tonumber(kv[j + 1]) else add(sums, g, kv[j], kv[j + 1]) end
    end
  else
    local ns = names_of(g)
    local values = redis.call('HMGET', key, unpack(ns))
    for j = 1, #values do
      if values[j] then add(sums, g, ns[j], values[j]) end
    end
  end
end
local out = {}
for first = 0, #KEYS - stride, stride do
  local sums = {}
  for i = 1, plan.n do sums[i] = 0 end
  local as = {}  -- group -> the group whose entries read it, or false: not read
  for g, s in pairs(short) do
    local newest = tonumber(redis.call('GET', KEYS[first + s.mark]) or '')
    if newest and newest < s.k then
      as[g] = false
      if s.h > 0 then as[s.h] = s.alt else read(sums, KEYS[first + s.hour], s.alt) end
    end
  end
  for g = 1, groups do
    local t = as[g]
    if t ~= false then read(sums, KEYS[first + g], t or g) end
  end
  out[#out + 1] = string.format(row, unpack(sums, 1, plan.n))
end
return table.concat(out, ' ')
"""
FIELDS_PER_CALL = 20_000
"""Each script call blocks Redis while it runs: a few milliseconds per call, many calls."""


def _bucket_plan(ranges: Mapping[str, Range], counters: tuple[str, ...],
                 tz: Any = None) -> tuple[list[tuple[str, Any]], dict, int]:
    """The bucket hashes a scope's windows need, the script's plan (for each bucket: the field
    indexes to read and the windows each belongs to), and the number of fields per scope."""
    need: defaultdict[tuple[str, Any], defaultdict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for w, r in enumerate(ranges.values()):
        d = decompose(r, tz)  # whole local days from day buckets (docs/history.md)
        for start in d.days:
            day = local_day_of(start, tz)
            need[("d", day.date)][str(day.day)].append(w)
        for m in d.minutes:
            need[("m", floor_to(m, HOUR_MS))][str((m % HOUR_MS) // MINUTE_MS)].append(w)
        for h in d.hours:
            need[("h", floor_to(h, DAY_MS))][str((h % DAY_MS) // HOUR_MS)].append(w)
    buckets = sorted(need)
    groups = [[[index, ws] for index, ws in need[b].items()] for b in buckets]
    fields = sum(len(g) for g in groups) * len(counters)
    short: dict[str, dict[str, Any]] = {}
    alt: list[list[list[Any]]] = []
    taken: set[int] = set()  # hour hashes already read with one minute hash's hour (one each)
    for g, (kind, hour) in enumerate(list(buckets)):
        k = _prefix_length(need[(kind, hour)]) if kind == "m" else None
        if k is None:
            continue
        h = buckets.index(("h", floor_to(hour, DAY_MS))) if ("h", floor_to(hour, DAY_MS)) in need else -1
        if h in taken:
            continue
        taken.add(h)
        own = dict(need[("h", floor_to(hour, DAY_MS))]) if h >= 0 else {}
        index = str((hour % DAY_MS) // HOUR_MS)
        own[index] = [*own.get(index, []), *need[(kind, hour)]["0"]]
        alt.append([[i, ws] for i, ws in own.items()])
        buckets.append(("x", hour))
        s = {"mark": len(buckets), "k": k, "h": h + 1, "hour": 0, "alt": len(groups) + len(alt)}
        if h < 0:
            buckets.append(("h", hour))
            s["hour"] = len(buckets)
        short[str(g + 1)] = s
    return buckets, {"counters": list(counters), "groups": groups, "n": len(ranges) * len(counters),
                     "short": short, "alt": alt}, fields


def _prefix_length(indexes: Mapping[str, list[int]]) -> int | None:
    """k when every window reading this minute hash reads exactly its first k minutes (the
    hour's start up to the range's end), else None."""
    ws = indexes.get("0")
    k = len(indexes)
    if not ws or any(indexes.get(str(i)) != ws for i in range(k)):
        return None
    return k


DAY_SUMS_LUA = """
-- Read-only. KEYS[1]: a scope index (seen:<kind>: id -> newest minute with data, only raised);
-- KEYS[1 + i]: scope i's day hash. ARGV[1]: the window's end rounded up to the minute (epoch
-- ms), ARGV[2]: JSON, the day hash fields to read (<day>:<counter>), ARGV[3]: JSON, the scopes'
-- ids in the index. A scope whose newest minute is before the end has nothing in its day after
-- the window (the window starts at the day's local midnight): its day hash holds the window's
-- sums, returned as stored (missing: 0). Else '-': the caller sums the buckets. One line per
-- scope, the numbers space-separated.
local before = tonumber(ARGV[1])
local fields, members = cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local out = {}
for i = 2, #KEYS do
  local newest = tonumber(redis.call('ZSCORE', KEYS[1], members[i - 1]) or '')
  if newest and newest < before then
    local values = redis.call('HMGET', KEYS[i], unpack(fields))
    for j = 1, #values do values[j] = values[j] or '0' end
    out[#out + 1] = table.concat(values, ' ')
  else
    out[#out + 1] = '-'
  end
end
return table.concat(out, '\\n')
"""
DAY_SCOPES_PER_CALL = 1_000
"""Scopes per day-sums call: ~10 µs of Redis each, so a call blocks writers ~10 ms at most."""


def _day_of(ranges: Mapping[str, Range], tz: Any) -> LocalDay | None:
    """The local day of a single window from a local midnight to a point in that day (`today`),
    whose sums the day's hash holds when nothing later in the day has data; else None."""
    if tz is None or len(ranges) != 1:
        return None
    r = next(iter(ranges.values()))
    day = local_day_of(r.start, tz)
    if local_start(local_date(r.start, tz), tz) != r.start or local_day_of(r.end - 1, tz) != day:
        return None
    return day


DayKey = tuple[str, str, tuple[str, ...]]
"""(scope, local date, counters): what one scope's kept day sums answer."""


class DayCache:
    """Scopes' day-hash sums (`_day_sums`) kept between requests until a commit writes the scope.

    Once a scope's newest minute is before a `today` window's end it stays so as the clock moves
    (only a commit raises it), and its day hash changes only by a commit that writes the scope's
    counters: its sums are the same for every request until then, so a wallboard refresh reads
    again only the agents that committed since the last one. `commit_seen` (an `UpdateHub`
    watcher) drops the scopes a commit names, or everything when it names none (a team move, an
    older worker's message, a resubscription: commits may have gone unseen). `watching()`: the
    commits can be seen (the subscription is up); when not, nothing is kept or handed out.
    Values are handed out as copies (callers add open agent time to them)."""

    MAX_ENTRIES = 200_000

    def __init__(self, watching: Callable[[], bool]) -> None:
        self.watching = watching
        self.version = 0
        """Commits seen: a read that began at an older version than a drop of its scope (or a
        clear) may predate that commit, and is not kept."""
        self._entries: dict[str, dict[tuple[str, tuple[str, ...]], tuple[int, dict[str, float]]]] = {}
        self._count = 0
        self._cleared_at = 0
        self._dropped_at: dict[str, int] = {}

    def generation(self) -> int | None:
        """The version a read begins at, or None when commits cannot be seen (keep nothing)."""
        return self.version if self.watching() else None

    def commit_seen(self, scopes: frozenset[str] | None) -> None:
        """A commit wrote these scopes' counters (None: any scope's)."""
        self.version += 1
        if scopes is None:
            self._entries.clear()
            self._dropped_at.clear()
            self._count = 0
            self._cleared_at = self.version
            return
        for scope in scopes:
            gone = self._entries.pop(scope, None)
            if gone is not None:
                self._count -= len(gone)
            self._dropped_at[scope] = self.version

    def get(self, generation: int, key: DayKey, before: int) -> dict[str, float] | None:
        """The sums kept for `key`, if read for a window ending no later than `before` (the
        scope's newest minute was before that end, so before this one too)."""
        found = self._entries.get(key[0], {}).get((key[1], key[2]))
        return None if found is None or found[0] > before else dict(found[1])

    def put(self, generation: int, key: DayKey, before: int, sums: dict[str, float]) -> None:
        """Kept only if no commit of the scope was seen since the read began (else it may
        predate it) and commits are still seen."""
        scope = key[0]
        if (not self.watching() or generation < self._cleared_at
                or self._dropped_at.get(scope, 0) > generation or self._count >= self.MAX_ENTRIES):
            return
        kept = self._entries.setdefault(scope, {})
        if (key[1], key[2]) not in kept:
            self._count += 1
        kept[(key[1], key[2])] = (before, dict(sums))


async def _day_sums(store: Any, scopes: list[str], day: LocalDay, r: Range,
                    counters: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The sums of the scopes (all of one kind in `BOUNDED_KINDS`) whose day hash holds `r`'s
    (nothing after `r` in the day): the rest are left out, to be summed from their buckets.
    Those kept by the store's `DayCache` (serve's), unwritten since, are not read again."""
    cache: DayCache | None = getattr(store, "day_cache", None)
    generation = cache.generation() if cache is not None else None
    out: dict[str, dict[str, float]] = {}
    date = day.date  # (a property formatting the date: once, not once per scope)
    if cache is not None and generation is not None:
        unread = []
        end = floor_to(r.end - 1, MINUTE_MS) + MINUTE_MS
        for s in scopes:
            kept = cache.get(generation, (s, date, counters), end)
            if kept is None:
                unread.append(s)
            else:
                out[s] = kept
        scopes = unread
        if not scopes:
            return out
    layout = store.layout
    script = store.redis.register_script(DAY_SUMS_LUA)
    before = str(floor_to(r.end - 1, MINUTE_MS) + MINUTE_MS)
    fields = json.dumps([day_field(day.day, c) for c in counters])
    pipe = store.redis.pipeline(transaction=False)
    for i in range(0, len(scopes), DAY_SCOPES_PER_CALL):
        part = scopes[i:i + DAY_SCOPES_PER_CALL]
        keys = [layout.bound_of(part[0])[0], *(layout.day_key(s, day.date) for s in part)]
        await script(keys=keys, args=[before, fields, json.dumps([layout.bound_of(s)[1] for s in part])], client=pipe)
    k = 0
    for reply in await pipe.execute():
        for line in reply.split("\n"):
            if line != "-":
                out[scopes[k]] = found = dict(zip(counters, map(float, line.split()), strict=True))
                if cache is not None and generation is not None:
                    cache.put(generation, (scopes[k], date, counters), int(before), found)
            k += 1
    return out


async def window_sums(store: Any, scopes: list[str], ranges: Mapping[str, Range],
                      counters: tuple[str, ...]) -> dict[str, dict[str, dict[str, float]]]:
    """scope -> window -> sums of `counters` over the buckets `Store.window_counters` reads.

    Redis sums (one script call per chunk of scopes, all calls pipelined), so a scrape moves a
    few numbers per scope instead of every field of every bucket. `today` alone (a window from
    a local midnight) of scopes whose index bounds their data is first read from each one's day
    hash (`_day_sums`: one small hash instead of the day's hour hash and the current hour's);
    the buckets are summed for those with data after the window (an event stamped ahead).
    """
    day = _day_of(ranges, store.layout.tz) if counters else None
    if day is None or not scopes:
        return await _bucket_sums(store, scopes, ranges, counters)
    (w, r), = ranges.items()
    by_kind: defaultdict[str, list[str]] = defaultdict(list)
    for s in scopes:
        kind, _, ident = s.partition(":")
        if kind in BOUNDED_KINDS and (ident or kind == "center"):
            by_kind[kind].append(s)
    found: dict[str, dict[str, float]] = {}
    for same in by_kind.values():
        found.update(await _day_sums(store, same, day, r, counters))
    rest = await _bucket_sums(store, [s for s in scopes if s not in found], ranges, counters)
    return {s: {w: found[s]} if s in found else rest[s] for s in scopes}


async def _bucket_sums(store: Any, scopes: list[str], ranges: Mapping[str, Range],
                       counters: tuple[str, ...]) -> dict[str, dict[str, dict[str, float]]]:
    """`window_sums` from the buckets `decompose` names (`WINDOW_SUMS_LUA`)."""
    buckets, plan, per_scope = _bucket_plan(ranges, counters, store.layout.tz)
    if not scopes or not buckets or not counters:
        return {s: {w: {} for w in ranges} for s in scopes}
    layout = store.layout
    script = store.redis.register_script(WINDOW_SUMS_LUA)
    chunk = max(1, FIELDS_PER_CALL // per_scope)
    argv = json.dumps(plan, separators=(",", ":"))
    pipe = store.redis.pipeline(transaction=False)
    for i in range(0, len(scopes), chunk):
        keys = [layout.minute_key(scope, b) if kind == "m" else layout.hour_key(scope, b)
                if kind == "h" else layout.newest_minute_key(scope, b) if kind == "x" else layout.day_key(scope, b)
                for scope in scopes[i:i + chunk] for kind, b in buckets]
        await script(keys=keys, args=[argv], client=pipe)
    flat: list[float] = []
    for part in await pipe.execute():
        flat.extend(map(float, part.split()))  # (no bytecode per number: 27,500 for 500 agents)
    out: dict[str, dict[str, dict[str, float]]] = {}
    n = len(counters)
    for k, scope in enumerate(scopes):
        row = flat[k * plan["n"]:(k + 1) * plan["n"]]
        out[scope] = {w: dict(zip(counters, row[i * n:(i + 1) * n], strict=True)) for i, w in enumerate(ranges)}
    return out


class OpenTime:
    """Open agent time (each logged-in agent's current state, up to now) per scope, for the
    ranges a scrape reads: each agent's share is computed once per range (`open_share`) and
    summed per scope kind when that kind is first asked for, instead of one pass over all
    agents per scope (5,000 agents × hundreds of scopes). An agent counts in the center, its own
    scope, its live team and campaign (`Scope.includes_live_agent`), found only for the kind
    asked (a wallboard refresh builds several of these over 5,000 agents)."""

    def __init__(self, live_agents: Mapping[str, dict], now_ms: int,
                 openings: Openings | None = None) -> None:
        """`openings`: the snapshot's shared groups (`query.openings_of`), for the center's,
        teams' and campaigns' sums; only when made of these very agents."""
        self.now_ms = now_ms
        self._agents = live_agents
        self._openings = openings if openings is not None and openings.agents is live_agents else None
        self._shares: dict[tuple[int, int], list[tuple[str, dict, dict[str, float]]]] = {}
        # keyed by (kind, ident): hashing a tuple is far cheaper than a dataclass at this volume
        self._sums: dict[tuple[int, int, str], dict[tuple[str, str], dict[str, float]]] = {}

    def of(self, scope: Scope, r: Range) -> dict[str, float]:
        """The open time `query.add_open_time` would add to `scope` over `r` (empty when none).
        Read only: the same dict may be handed out again."""
        key = (r.start, r.end, scope.kind)
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = self._sum(r, scope.kind)
        return sums.get((scope.kind, scope.ident), {})

    def _sum(self, r: Range, kind: str) -> dict[tuple[str, str], dict[str, float]]:
        if self._openings is not None and kind in GROUP_KINDS:
            grouped = self._openings.sums(kind, r, self.now_ms)
            if grouped is not None:
                return grouped
        shares = self._shares.get((r.start, r.end))
        if shares is None:
            now = self.now_ms
            shares = self._shares[(r.start, r.end)] = [
                (agent_id, a, own) for agent_id, a in self._agents.items() if (own := open_share(a, r, now))]
        if kind == "agent":  # one agent each: its share is its sum (callers add it to float sums)
            return {("agent", agent_id): own for agent_id, _, own in shares}
        if kind not in ("center", "team", "campaign"):
            return {}  # caller_id, list and variant scopes have no agent time
        out: defaultdict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for _, a, own in shares:
            if kind == "center":
                acc = out[("center", "")]
            else:
                ident = a.get(kind)
                if not ident:
                    continue
                acc = out[(kind, ident)]
            for name, ms in own.items():
                acc[name] = acc.get(name, 0.0) + ms
        return dict(out)


async def window_counters(store: Any, scopes: list[Scope], ranges: Mapping[str, Range],
                          counters: tuple[str, ...], open_time: OpenTime | None) -> dict[str, dict[Scope, dict[str, float]]]:
    """window -> scope -> counter sums with open agent time added, as `Query.counters` gives
    (restricted to `counters`; per-reason pause time is not included). No `open_time`: stored
    sums only (for KPIs that do not use agent time)."""
    sums = await window_sums(store, [str(s) for s in scopes], ranges, counters)
    out: dict[str, dict[Scope, dict[str, float]]] = {w: {} for w in ranges}
    for s in scopes:
        for w, r in ranges.items():
            c = sums[str(s)][w]
            if open_time is not None:
                for name, ms in open_time.of(s, r).items():
                    if name in c:  # the requested counters (per-reason pause time is not)
                        c[name] += ms
            out[w][s] = c
    return out
