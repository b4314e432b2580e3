-- Atomic, replay-safe commit of one processed batch (see docs/architecture.md).
-- ARGV[1]: JSON batch; ARGV[2..]: entity states, referred to by position from the batch.
-- Returns {"ok"}, {"conflict", what, key} or {"invalid", what, key, field}.
--
-- Redis does not roll a script back: a command that fails after the first write leaves that
-- write in place, and the batch's retry would add it again. So every command that could fail
-- (an increment past 64 bits, a non-numeric field, a key of the wrong type, a bad TTL) is
-- checked before the first write, and the writes then run a plan that cannot fail. (Out of
-- memory cannot interrupt it either: Redis refuses only a script's first write.)
-- builtins as locals: a global is a table lookup at every use, a local a register
local tonumber, tostring, type, ipairs, unpack = tonumber, tostring, type, ipairs, unpack
local b = cjson.decode(ARGV[1])
local P = b.prefix

-- 1. Offset guard: every source partition must still be at the offset the worker read.
local offsets_key = P .. 'offsets'
for _, o in ipairs(b.offsets) do
  local cur = tonumber(redis.call('HGET', offsets_key, o[1]) or '-1')
  if cur ~= o[2] then return {'conflict', 'offset', o[1]} end
end

-- 2. Optimistic concurrency on every entity state the batch read.
for _, e in ipairs(b.entities) do
  local cur = tonumber(redis.call('HGET', e[1], 'v') or '0')
  if cur ~= e[2] then return {'conflict', 'entity', e[1]} end
end
-- ... and on the team of every agent the batch counted in without writing its state (the
-- version would conflict with every write of the agent's state; the team changes only with a
-- team move, which writes `t`). No `t`: nothing has written the agent's states part since this
-- version of the script (a team move would have), so the team the batch read is still its team.
for _, g in ipairs(b.teams or {}) do
  local cur = redis.call('HGET', g[1], 't')
  if cur and cur ~= g[2] then return {'conflict', 'team', g[1]} end
end

-- 3. Validation, and the plan of the few increments that are not counters (team moves, pipeline
-- counters). `vals[key][field]` follows each field they touch through the batch as the writes
-- will change it, so a field incremented many times is checked at every step. An integer delta goes to HINCRBY only while the field holds an integer (else to
-- HINCRBYFLOAT, which adds integers exactly below 2^64 and never fails on a number).
-- Doubles near 2^63 are 2048 apart: the bound keeps a margin (a counter within 4096 of 2^63 is
-- refused, not risked).
local INT_LIMIT = 9223372036854771712
local FLOAT_LIMIT = 1e300
local problem = nil
local types = {}
local function of_type(key, want)
  local t = types[key]
  if t == nil then
    t = redis.call('TYPE', key)['ok']
    types[key] = t
  end
  if t ~= 'none' and t ~= want then
    problem = problem or {'invalid', 'key holds a ' .. t .. ', not a ' .. want, key, ''}
    return false
  end
  return true
end
local vals = {}
local function parse(key, field, raw)
  if not raw then return {0, true} end
  local n = tonumber(raw)
  if n == nil or n ~= n then
    problem = problem or {'invalid', 'field is not a number', key, field}
    return nil
  end
  return {n, string.match(raw, '^-?%d+$') ~= nil}
end
local function field_value(key, field)
  -- the field's value as the writes so far will leave it
  local of_key = vals[key]
  if of_key == nil then
    if not of_type(key, 'hash') then return nil end
    of_key = {}
    vals[key] = of_key
  end
  local v = of_key[field]
  if v == nil then
    v = parse(key, field, redis.call('HGET', key, field))
    of_key[field] = v
  end
  return v
end
local plan = {}
local function add(key, field, delta, integer)
  local v = field_value(key, field)
  if v == nil then return end
  local d = tonumber(delta)
  if d == nil or d ~= d or d >= FLOAT_LIMIT or d <= -FLOAT_LIMIT then
    problem = problem or {'invalid', 'increment is not a finite number: ' .. tostring(delta), key, field}
    return
  end
  local s = v[1] + d
  if integer and v[2] then
    local refused = (not string.match(tostring(delta), '^-?%d+$')
                     and 'integer increment is not an integer: ' .. tostring(delta))
                    or ((s >= INT_LIMIT or s <= -INT_LIMIT) and 'counter would overflow 64 bits')
    if refused then
      problem = problem or {'invalid', refused, key, field}
      return
    end
    plan[#plan + 1] = {'HINCRBY', key, field, delta}
  else
    if s >= FLOAT_LIMIT or s <= -FLOAT_LIMIT then
      problem = problem or {'invalid', 'sum would not be finite', key, field}
      return
    end
    plan[#plan + 1] = {'HINCRBYFLOAT', key, field, delta}
    v[2] = false
  end
  v[1] = s
end
local function whole(ms, key)
  if type(ms) ~= 'number' or ms ~= math.floor(ms) then
    problem = problem or {'invalid', 'expiry is not an integer: ' .. tostring(ms), key, ''}
  end
end

-- Team moves: an agent's stored history leaves its old team for its new one.
-- b.moves = {{agent scope, old team scope or false, new team scope, new team id}, ...}
-- b.history = {{before, after, month index key or false, its expiry or false[, mark before,
-- mark after, mark expiry]}, ...}: every bucket that may hold an agent's history, a scope's key
-- `before .. scope .. after`; a moved day indexes the new team in its month, a moved minute
-- hash (its minutes unknown) raises both teams' newest-minute mark of the hour to 59.
local function max_args(list, from, to)  -- unpack is bounded by Lua's C stack (8000)
  return unpack(list, from, math.min(to, #list))
end
local ttls = {}
local indexed = {}
local raised = {}
-- An agent's history spans ~490 bucket keys, most of them absent (a new agent has none): one
-- EXISTS per run of keys skips a run with none, instead of a TYPE and an HGETALL per key (a
-- missing key moves nothing, so skipping it changes nothing).
local MOVE_RUN = 500
for _, m in ipairs(b.moves) do
  local keys = {}
  for j, h in ipairs(b.history) do keys[j] = h[1] .. m[1] .. h[2] end
  for run = 1, #keys, MOVE_RUN do
    if redis.call('EXISTS', max_args(keys, run, run + MOVE_RUN - 1)) > 0 then
      for j = run, math.min(run + MOVE_RUN - 1, #keys) do
        local h = b.history[j]
        if of_type(keys[j], 'hash') then
          local flat = redis.call('HGETALL', keys[j])
          if #flat > 0 then
            local old_key, new_key = m[2] and (h[1] .. m[2] .. h[2]), h[1] .. m[3] .. h[2]
            for i = 1, #flat, 2 do
              local n = tonumber(flat[i + 1])
              if n == nil then
                problem = problem or {'invalid', 'field is not a number', keys[j], flat[i]}
              else
                if old_key then add(old_key, flat[i], -n, false) end
                add(new_key, flat[i], flat[i + 1], false)
              end
            end
            local ttl = redis.call('PTTL', keys[j])
            if ttl > 0 then ttls[#ttls + 1] = {new_key, ttl} end
            if h[3] and of_type(h[3], 'set') then
              whole(h[4], h[3])
              indexed[#indexed + 1] = {h[3], m[4], h[4]}
            end
            if h[5] then
              for _, team in ipairs(m[2] and {m[2], m[3]} or {m[3]}) do
                raised[#raised + 1] = {h[5] .. team .. h[6], 59, h[7], h[1] .. team .. h[2]}
              end
            end
          end
        end
      end
    end
  end
end
-- Counters: b.incr = {{key, {field, int_delta, ...}, {field, float_delta, ...}}, ...}, summed per
-- (hash, field) by commit.py, so each field appears once: one HMGET per hash reads what the
-- checks need. Validation costs Lua time per field, so the common case is checked with length
-- tests and one pattern: an integer delta of at most 15 digits onto a stored integer of at most
-- 15 digits (or none) cannot overflow 64 bits, and their sum is below 2^53, exact in a double:
-- the new value is computed here and all such fields of a hash go in one HSET (the bytes
-- HINCRBY would store; one command per hash instead of one per field). Anything else takes the
-- exact path: HINCRBY, or HINCRBYFLOAT where the field does not hold an integer (or the delta
-- is a float).
local find, format = string.find, string.format
local INT = '^-?[1-9]%d*$'  -- what HINCRBY takes (besides '0'): no sign, blanks, leading zeros
local counter_writes = {}
for _, x in ipairs(b.incr) do
  local key, ints, floats = x[1], x[2], x[3]
  local fields = {}
  for i = 1, #ints, 2 do fields[#fields + 1] = ints[i] end
  for i = 1, #floats, 2 do fields[#fields + 1] = floats[i] end
  -- a key of another type fails the HMGET itself: caught here, before any write
  local raws
  if #fields <= 4000 then  -- the usual case: the reply as it is, no copy
    raws = redis.pcall('HMGET', key, unpack(fields))
  else
    raws = {}
    for i = 1, #fields, 4000 do
      local part = redis.pcall('HMGET', key, max_args(fields, i, i + 3999))
      if part.err then raws = part break end
      for j = 1, #part do raws[i + j - 1] = part[j] end
    end
  end
  if raws.err then
    problem = problem or {'invalid', 'key holds a ' .. redis.call('TYPE', key)['ok'] .. ', not a hash', key, ''}
  else
    local moved = vals[key]
    local n_ints = #ints / 2
    local fresh, incr, float_incr = {}, {}, {}
    for j = 1, #fields do
      local f, raw, int_delta = fields[j], raws[j], j <= n_ints
      local delta = int_delta and ints[j * 2] or floats[(j - n_ints) * 2]
      local m = moved and moved[f]
      if int_delta and not m and #delta <= 15 and (not raw or (#raw <= 15 and (find(raw, INT) or raw == '0'))) then
        fresh[#fresh + 1] = f
        -- below 2^53 a double adds integers exactly, and %d prints them as HINCRBY would
        fresh[#fresh + 1] = raw and format('%d', tonumber(raw) + tonumber(delta)) or delta
      else
        local cur, cur_int = 0, true
        if m then
          cur, cur_int = m[1], m[2]
        elseif raw then
          cur = tonumber(raw)
          if cur == nil or cur ~= cur then
            problem = problem or {'invalid', 'field is not a number', key, f}
            break
          end
          cur_int = (not int_delta) or find(raw, INT) ~= nil or raw == '0'
        end
        local s = cur + tonumber(delta)
        if int_delta and cur_int then
          if s >= INT_LIMIT or s <= -INT_LIMIT then
            problem = problem or {'invalid', 'counter would overflow 64 bits', key, f}
          end
          incr[#incr + 1] = f
          incr[#incr + 1] = delta
        else
          if s ~= s or s >= FLOAT_LIMIT or s <= -FLOAT_LIMIT then
            problem = problem or {'invalid', 'sum would not be finite', key, f}
          end
          float_incr[#float_incr + 1] = f
          float_incr[#float_incr + 1] = delta
        end
      end
    end
    counter_writes[#counter_writes + 1] = {key, fresh, incr, float_incr}
  end
end
for _, x in ipairs(b.expire) do whole(x[2], x[1]) end
for _, e in ipairs(b.entities) do  -- (their type: the version check read them as hashes)
  if e[3] then whole(e[4], e[1]) end
end
for _, l in ipairs(b.live) do of_type(l[1], 'hash') end
for _, s in ipairs(b.scopes) do of_type(s[1], 'zset') end
for _, s in ipairs(b.months or {}) do of_type(s[1], 'set') end
for _, r in ipairs(b.retire or {}) do of_type(r[1], 'zset') end
for _, p in ipairs(b.pipeline) do add(P .. 'pipeline', p[1], p[2], false) end
for _, name in ipairs({'gauges', 'offsets', 'watermarks', 'workers', 'agents', 'agent_calls'}) do of_type(P .. name, 'hash') end
-- Customer retention sets: sorted sets, integer deltas (commit.py makes them), integer expiry.
for _, r in ipairs(b.leads or {}) do
  of_type(r[1], 'zset')
  whole(r[2], r[1])
  for i = 2, #r[3], 2 do
    if not string.match(r[3][i], '^-?%d+$') then
      problem = problem or {'invalid', 'lead sale delta is not an integer: ' .. tostring(r[3][i]), r[1], r[3][i - 1]}
    end
  end
end
-- Newest minute per scope-hour (b.newest = {{key, minute index, expiry, minute hash}}), read by
-- readers that take the hour field for a prefix of the hour. Only raised; a minute hash that
-- exists without one was written before them, so its hour's newest minute is unknown: 59.
local newest = {}
local marks = b.newest or {}
for _, x in ipairs(raised) do marks[#marks + 1] = x end  -- last: 59, the largest, is written last
for _, x in ipairs(marks) do
  local cur = redis.pcall('GET', x[1])
  if type(cur) == 'table' and cur.err then
    problem = problem or {'invalid', 'key holds a ' .. redis.call('TYPE', x[1])['ok'] .. ', not a string', x[1], ''}
  else
    whole(x[3], x[1])
    local want = x[2]
    if not cur then
      if redis.call('EXISTS', x[4]) == 1 then want = 59 end
    elseif not tonumber(cur) then
      want = 59
    elseif tonumber(cur) >= want then
      want = nil
    end
    if want then newest[#newest + 1] = {x[1], want, x[3]} end
  end
end
if problem then return problem end

-- 4. The writes: none of them can fail now.
-- Entries of one key go in one command (`by_key`): each (key, member) appears once in a batch,
-- so one HSET/HDEL/ZADD/SADD of them all stores what one command per entry would.
local function by_key(list, member)  -- {key, args} in first-seen order
  local out, at = {}, {}
  for i = 1, #list do
    local x = list[i]
    local group = at[x[1]]
    if group == nil then
      group = {x[1], {}}
      at[x[1]] = group
      out[#out + 1] = group
    end
    member(group[2], x)
  end
  return out
end
local function each_chunk(cmd, key, extra, args)  -- 4000 arguments a call (an even number)
  for i = 1, #args, 4000 do
    if extra then redis.call(cmd, key, extra, max_args(args, i, i + 3999))
    else redis.call(cmd, key, max_args(args, i, i + 3999)) end
  end
end
for _, w in ipairs(plan) do redis.call(w[1], w[2], w[3], w[4]) end
for _, w in ipairs(counter_writes) do
  local key, fresh, incr, float_incr = w[1], w[2], w[3], w[4]
  for i = 1, #fresh, 4000 do redis.call('HSET', key, max_args(fresh, i, i + 3999)) end
  for i = 1, #incr, 2 do redis.call('HINCRBY', key, incr[i], incr[i + 1]) end
  for i = 1, #float_incr, 2 do redis.call('HINCRBYFLOAT', key, float_incr[i], float_incr[i + 1]) end
end
-- Minute hashes with b.promote_at fields or more become hash tables (commit.py, PROMOTE_AT): a
-- field whose value is longer than `hash-max-listpack-value` converts the hash, and deleting it
-- again leaves the hash table (Redis never converts back while running; a hash reloaded from
-- an RDB file may be compact again, and is promoted again by its next commit). OBJECT is asked
-- with pcall: where it is refused, nothing is promoted and the commit goes on.
for _, i in ipairs(b.promote or {}) do
  local key = b.incr[i][1]
  local enc = redis.pcall('OBJECT', 'ENCODING', key)
  if (enc == 'listpack' or enc == 'ziplist') and redis.call('HLEN', key) >= b.promote_at then
    redis.call('HSET', key, '~promote', string.rep('x', 1024))
    redis.call('HDEL', key, '~promote')
  end
end
for _, x in ipairs(newest) do
  redis.call('SET', x[1], x[2])
  redis.call('PEXPIREAT', x[1], x[3])
end
for _, t in ipairs(ttls) do redis.call('PEXPIRE', t[1], t[2]) end
for _, x in ipairs(indexed) do
  redis.call('SADD', x[1], x[2])
  redis.call('PEXPIREAT', x[1], x[3])
end
-- Month index {key, id}: the ids of a scope kind with data in a local month (its expiry is in
-- b.expire, applied next).
for _, g in ipairs(by_key(b.months or {}, function(a, x) a[#a + 1] = x[2] end)) do
  each_chunk('SADD', g[1], false, g[2])
end
-- Customer retention sets {key, expire_at_ms, {lead, delta, ...}}: a lead's score is its sales
-- in the period; a re-attribution that takes its last sale away removes it.
for _, r in ipairs(b.leads or {}) do
  local list = r[3]
  for i = 1, #list, 2 do
    if tonumber(redis.call('ZINCRBY', r[1], list[i + 1], list[i])) <= 0 then
      redis.call('ZREM', r[1], list[i])
    end
  end
  if redis.call('EXISTS', r[1]) == 1 then redis.call('PEXPIREAT', r[1], r[2]) end
end
for _, x in ipairs(b.expire) do
  redis.call('PEXPIREAT', x[1], x[2])
end

-- 5. Entity states: {key, version, ARGV index of the JSON state or false, ttl_ms, sibling key
-- or false, agent's team or false}. The sibling (the other part of an agent's state) expires
-- with it, unchanged; an agent's states part keeps the agent's team as field `t`.
for _, e in ipairs(b.entities) do
  if e[3] then
    if e[6] then
      redis.call('HSET', e[1], 'v', e[2] + 1, 's', ARGV[e[3]], 't', e[6])
    else
      redis.call('HSET', e[1], 'v', e[2] + 1, 's', ARGV[e[3]])
    end
    redis.call('PEXPIRE', e[1], e[4])
    if e[5] then redis.call('PEXPIRE', e[5], e[4]) end
  else
    redis.call('DEL', e[1])
  end
end

-- 6. Live state, scope index, gauges, offsets.
-- b.live = {{hash, id, json or false}, ...}
local live_sets = by_key(b.live, function(a, l) if l[3] then a[#a + 1] = l[2] a[#a + 1] = l[3] end end)
for _, g in ipairs(live_sets) do each_chunk('HSET', g[1], false, g[2]) end
local live_dels = by_key(b.live, function(a, l) if not l[3] then a[#a + 1] = l[2] end end)
for _, g in ipairs(live_dels) do each_chunk('HDEL', g[1], false, g[2]) end
-- Scope index: id -> newest minute with data (GT: a late old event never lowers it). Scopes with
-- no data left in the retention retire (a bounded number per commit), with their totals and
-- newest-event gauge.
for _, g in ipairs(by_key(b.scopes, function(a, x) a[#a + 1] = x[3] a[#a + 1] = x[2] end)) do
  each_chunk('ZADD', g[1], 'GT', g[2])
end
-- A team move raises both teams' scores to its agent's newest minute (after this batch's), so
-- they bound the moved history too; the commit's clock when the agent has none (no data).
-- b.move_seen = {{agent index, agent id, team index, team id, clock ms}}
for _, m in ipairs(b.move_seen or {}) do
  redis.call('ZADD', m[3], 'GT', redis.call('ZSCORE', m[1], m[2]) or m[5], m[4])
end
for _, r in ipairs(b.retire or {}) do
  local gone = redis.call('ZRANGEBYSCORE', r[1], '-inf', '(' .. b.retire_before, 'LIMIT', 0, 100)
  if #gone > 0 then
    redis.call('ZREM', r[1], unpack(gone))
    for _, id in ipairs(gone) do
      redis.call('DEL', P .. 't:' .. r[2] .. ':' .. id)
      if r[2] == 'campaign' then redis.call('HDEL', P .. 'gauges', 'newest_event:' .. id) end
    end
  end
end
local function pairs_of(list, value_at)  -- {field, value, ...} of {{field, ..., value}, ...}
  local out = {}
  for i = 1, #list do
    out[#out + 1] = list[i][1]
    out[#out + 1] = list[i][value_at]
  end
  return out
end
each_chunk('HSET', P .. 'gauges', false, pairs_of(b.gauges, 2))
each_chunk('HSET', offsets_key, false, pairs_of(b.offsets, 3))
each_chunk('HSET', P .. 'watermarks', false, pairs_of(b.watermarks or {}, 2))
each_chunk('HSET', P .. 'agents', false, pairs_of(b.agents or {}, 2))
each_chunk('HSET', P .. 'agent_calls', false, pairs_of(b.agent_calls or {}, 2))
if b.worker then redis.call('HSET', P .. 'workers', b.worker[1], b.worker[2]) end
if b.notify then redis.call('PUBLISH', P .. 'updates', b.notify) end
return {'ok'}
