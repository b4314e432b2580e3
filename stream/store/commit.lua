-- Atomic, replay-safe commit of one processed batch (see docs/architecture.md).
-- ARGV[1]: JSON batch; ARGV[2..]: entity states, referred to by position from the batch.
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
    -- a day hash: the new team has data in that month ({..., month index key, team id,
    -- the index's expiry})
    if m[4] then
      redis.call('SADD', m[4], m[5])
      redis.call('PEXPIREAT', m[4], m[6])
    end
  end
end

-- 4. Counters: {minute_key or false, hour_key or false, total_key, minute_field_prefix,
-- hour_field_prefix, {name, int_delta, ...}, {name, float_delta, ...}, day_key,
-- day_field_prefix}: each delta goes to all four hashes (false: that bucket is already past its
-- retention, an imported old event).
local function incr(cmd, list, c)
  for i = 1, #list, 2 do
    local name, delta = list[i], list[i + 1]
    if c[1] then redis.call(cmd, c[1], c[4] .. name, delta) end
    if c[2] then redis.call(cmd, c[2], c[5] .. name, delta) end
    redis.call(cmd, c[8], c[9] .. name, delta)
    redis.call(cmd, c[3], name, delta)
    -- taken back by a late event: the total's `retracted:` field grows too, so that what is
    -- exported (net + retracted, and retracted) only goes up (docs/observability.md)
    if string.byte(delta, 1) == 45 then
      redis.call(cmd, c[3], 'retracted:' .. name, string.sub(delta, 2))
    end
  end
end
for _, c in ipairs(b.counters) do
  incr('HINCRBY', c[6], c)
  incr('HINCRBYFLOAT', c[7], c)
end
-- Month index {key, id}: the ids of a scope kind with data in a local month.
for _, s in ipairs(b.months or {}) do redis.call('SADD', s[1], s[2]) end
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
-- then key expiries {key, expire_at_ms} (month indexes included).
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
