-- Atomic, replay-safe commit of one processed batch (see docs/architecture.md).
-- ARGV[1]: JSON batch; ARGV[2..]: entity states, referred to by position from the batch; then
-- the counters in ARGV[b.c0] (section 4).
-- Returns {"ok"} or {"conflict", what, key}.
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

-- 3. Team moves: an agent's stored history leaves its old team for its new one.
-- b.moves = {{agent_key, old_team_key or false, new_team_key}, ...}
for _, m in ipairs(b.moves) do
  local flat = redis.call('HGETALL', m[1])
  if #flat > 0 then
    local ttl = redis.call('PTTL', m[1])
    for i = 1, #flat, 2 do
      if m[2] then redis.call('HINCRBYFLOAT', m[2], flat[i], -tonumber(flat[i + 1])) end
      redis.call('HINCRBYFLOAT', m[3], flat[i], flat[i + 1])
    end
    if ttl > 0 then redis.call('PEXPIRE', m[3], ttl) end
  end
end

-- 4. Counters: ARGV[b.c0] is one flat JSON array (decoded in C; one script argument per
-- field cost more to send than to apply): key, number of integer fields, number of float
-- fields, then field, delta pairs (deltas as strings: Lua numbers keep 14 digits). The batch's
-- deltas are summed per hash and field already (commit.py), so each field is written once.
local c = cjson.decode(ARGV[b.c0])
local i = 1
while i <= #c do
  local key, ni, nf = c[i], c[i + 1], c[i + 2]
  i = i + 3
  for _ = 1, ni do
    redis.call('HINCRBY', key, c[i], c[i + 1])
    i = i + 2
  end
  for _ = 1, nf do
    redis.call('HINCRBYFLOAT', key, c[i], c[i + 1])
    i = i + 2
  end
end
-- then key expiries {key, expire_at_ms}.
for _, x in ipairs(b.expire) do
  redis.call('PEXPIREAT', x[1], x[2])
end

-- 5. Entity states: {key, version, ARGV index of the JSON state or false, ttl_ms}.
for _, e in ipairs(b.entities) do
  if e[3] then
    redis.call('HSET', e[1], 'v', e[2] + 1, 's', ARGV[e[3]])
    redis.call('PEXPIRE', e[1], e[4])
  else
    redis.call('DEL', e[1])
  end
end

-- 6. Live state, scope index, pipeline counters and gauges, offsets.
for _, l in ipairs(b.live) do
  -- l = {hash, id, json or false}
  if l[3] then redis.call('HSET', l[1], l[2], l[3]) else redis.call('HDEL', l[1], l[2]) end
end
-- Scope index: id -> newest minute with data (GT: a late old event never lowers it). Scopes with
-- no data left in the retention retire (a bounded number per commit), with their totals and
-- newest-event gauge.
for _, s in ipairs(b.scopes) do redis.call('ZADD', s[1], 'GT', s[3], s[2]) end
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
for _, p in ipairs(b.pipeline) do redis.call('HINCRBYFLOAT', P .. 'pipeline', p[1], p[2]) end
for _, g in ipairs(b.gauges) do redis.call('HSET', P .. 'gauges', g[1], g[2]) end
for _, o in ipairs(b.offsets) do redis.call('HSET', offsets_key, o[1], o[3]) end
for _, w in ipairs(b.watermarks or {}) do redis.call('HSET', P .. 'watermarks', w[1], w[2]) end
for _, a in ipairs(b.agents or {}) do redis.call('HSET', P .. 'agents', a[1], a[2]) end
if b.worker then redis.call('HSET', P .. 'workers', b.worker[1], b.worker[2]) end
if b.notify then redis.call('PUBLISH', P .. 'updates', b.notify) end
return {'ok'}
