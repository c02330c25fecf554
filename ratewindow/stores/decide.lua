-- ratewindow: the decision core (ratewindow/_core.py), ported to Redis Lua. Loaded once with
-- SCRIPT LOAD and called with EVALSHA by ratewindow/stores/_redis.py.
--
-- One call acts on every member of a limiter set, all-or-nothing: it reads and decides first and
-- writes only after the decision, so a refused or aborted call leaves no trace. Each function below
-- mirrors the Python method of the same name line by line, in the same floating-point operations,
-- so both make bit-identical decisions (tests/test_store_equivalence.py checks it).
--
-- KEYS, two per member (all in one hash slot): KEYS[2i-1] a hash of scalars, KEYS[2i] the log of a
-- window (a sorted set; unused for the other kinds).
--   hash fields  window: a = base, b = total, last = time of the last entry, seq = entries ever made
--                bucket: a = tat            daily: a = start of the booked day, b = count
--                every kind: hold = paused until, seen = the latest time a write was decided at
--   log          one member per grant, "<time>:<seq>", scored by the cumulative cost up to and
--                including it, so "which entry must expire first" is one ZRANGEBYSCORE.
-- ARGV (few arguments, each a few words: every argument costs the client more than parsing here):
--   ARGV[1]      "op now x max_wait min_ttl": now '-' = the server's TIME; x the cost (seconds for
--                op 'p'); max_wait '-' = none; min_ttl the least key expiry in ms
--   ARGV[1 + i]  member i: "kind limit span [boundaries...]", kind 'w', 'b' or 'd'; a daily member
--                lists consecutive local day starts (Unix seconds) around now
--   ARGV[1+n+i]  op 'c' only: member i's stamp "at aux"
-- ops: 'a' acquire, 'w' wait time (no write), 'c' cancel, 'p' pause, 'u' used (one member),
--      'v' available, 'r' reset.
-- Returns an array of strings: 'a'/'w' {granted '1'|'0', delay, at_1, aux_1, ...} (stamps only when
-- recorded); 'u'/'v' {value}; 'c'/'p'/'r' {'1'}; or {'C', t} when a daily member needs the period
-- containing t, which was not passed: nothing was written, the caller retries with more boundaries.

local NEG_INF = -math.huge
-- Exact text for a float (Redis turns the numbers we pass to commands into text the same way).
local function fmt(x) return string.format('%.17g', x) end
local function time_of(member) return tonumber(string.match(member, '^[^:]+')) end

if redis.replicate_commands then pcall(redis.replicate_commands) end -- Redis < 5: TIME, then writes

local function words(text)
  local out = {}
  for word in string.gmatch(text, '%S+') do out[#out + 1] = word end
  return out
end

local head = words(ARGV[1])
local op = head[1]
local now
if head[2] == '-' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(head[2])
end
local x = tonumber(head[3])
local max_wait = nil
if head[4] ~= '-' then max_wait = tonumber(head[4]) end
local min_ttl = tonumber(head[5])
local n = #KEYS / 2

local members = {}
for i = 1, n do
  local w = words(ARGV[1 + i])
  local b = {}
  for k = 4, #w do b[k - 3] = tonumber(w[k]) end
  members[i] = {hkey = KEYS[2 * i - 1], zkey = KEYS[2 * i], kind = w[1], limit = tonumber(w[2]),
                span = tonumber(w[3]), b = b}
end

-- Calendar.period: the (start, end) of the local day containing t, from the boundaries passed in.
local function period(m, t)
  local b = m.b
  for k = 1, #b - 1 do
    if b[k] <= t and t < b[k + 1] then return b[k], b[k + 1] end
  end
  error({rw_need = t})
end

local function load(m)
  local h = redis.call('HMGET', m.hkey, 'a', 'b', 'last', 'hold', 'seen', 'seq', 'exp')
  local kind = m.kind
  if kind == 'w' then
    m.base = tonumber(h[1]) or 0
    m.total = tonumber(h[2]) or 0
    m.last = tonumber(h[3])
    m.seq = tonumber(h[6]) or 0
  elseif kind == 'b' then
    m.tat = tonumber(h[1]) or NEG_INF
  else
    m.start = tonumber(h[1]) or NEG_INF
    m.count = tonumber(h[2]) or 0
  end
  m.hold = tonumber(h[4]) or NEG_INF
  m.exp = tonumber(h[7]) or NEG_INF
  m.exists = h[4] or h[1] or h[5]
  local seen = tonumber(h[5])
  if seen and seen > now then m.now = seen else m.now = now end -- time never goes backwards per key
end

-- WindowState.prune, without writing: m.cut entries expire (-1: all), m.lbase is the base after.
local function prune(m, now)
  m.cut = 0
  m.lbase = m.base
  m.empty = (m.last == nil)
  if m.empty then return end
  local span = m.span
  if m.last + span <= now then -- times never decrease along the log: the last expired, so all did
    m.cut = -1
    m.lbase = m.total
    m.empty = true
    return
  end
  local first, size = 0, 2 -- usually one entry expired since the last grant: read two
  while true do
    local batch = redis.call('ZRANGE', m.zkey, first, first + size - 1, 'WITHSCORES')
    for i = 1, #batch, 2 do
      if time_of(batch[i]) + span <= now then
        m.cut = m.cut + 1
        m.lbase = tonumber(batch[i + 1])
      else
        return
      end
    end
    if #batch < 2 * size then return end
    first = first + size
    if size < 64 then size = size * 4 end
  end
end

-- The earliest time >= now at which cost fits on member m (WindowState/BucketState/DailyState.earliest).
local function earliest(m, now, cost)
  local kind = m.kind
  local base
  if kind == 'w' then
    prune(m, now)
    if m.empty then
      base = now
    else
      local last = m.last
      if last > now then base = last else base = now end
      if m.total - m.lbase + cost > m.limit then
        local target = m.total - (m.limit - cost)
        local lo
        if target > m.lbase then lo = target else lo = '(' .. fmt(m.lbase) end -- bisect from head
        local hit = redis.call('ZRANGEBYSCORE', m.zkey, lo, '+inf', 'LIMIT', 0, 1)
        local free = time_of(hit[1]) + m.span
        if free > base then base = free end
      end
    end
  elseif kind == 'b' then
    local fits = m.tat - (m.limit - cost) * m.span
    if fits > now then base = fits else base = now end
  else
    local start, stop = period(m, now)
    local in_use
    if m.start > start then -- already booked into a later day: queue behind that booking
      base = m.start
      local _, later = period(m, base)
      stop = later
      in_use = m.count
    else
      base = now
      if m.start == start then in_use = m.count else in_use = 0 end
    end
    if in_use + cost > m.limit then base = stop end
  end
  if base >= m.hold then return base end
  return m.hold
end

-- _core._record, on the loaded values only (written by flush): returns the stamp's aux value.
local function record(m, at, cost)
  local kind = m.kind
  if kind == 'w' then
    m.total = m.total + cost
    m.seq = m.seq + 1
    m.entry = at
    m.last = at
    return 0
  elseif kind == 'b' then
    local previous = m.tat
    local from = at
    if previous > at then from = previous end
    m.tat = from + cost * m.span
    return previous
  end
  local start, stop = period(m, at)
  if start == m.start then
    m.count = m.count + cost
  else
    m.start = start
    m.count = cost
  end
  m.stop = stop
  return start
end

-- When member m's state stops mattering (an expired key is the same as a fresh one).
local function expires_at(m)
  local t = m.hold
  local kind = m.kind
  if kind == 'w' then
    if m.last and m.last + m.span > t then t = m.last + m.span end
  elseif kind == 'b' then
    if m.tat > t then t = m.tat end
  elseif m.start > NEG_INF then
    local stop = m.stop
    if not stop then
      if m.start < m.b[1] then stop = m.b[1] else stop = select(2, period(m, m.start)) end
    end
    if stop > t then t = stop end
  end
  return t
end

-- The keys' expiry (field exp, store time) is moved only when the state needs it later, and
-- then a little further (a quarter of a window or of a bucket's refill), so most grants set none.
local function extend(m, force)
  local need = expires_at(m)
  if need <= m.exp and not force then return false end
  if m.kind == 'w' then
    need = need + m.span / 4
  elseif m.kind == 'b' then
    need = need + m.limit * m.span / 4
  end
  m.exp = need
  return true
end

local function expire(m)
  local ttl = math.ceil((m.exp - m.now) * 1000) + 1
  if ttl < min_ttl then ttl = min_ttl end
  redis.call('PEXPIRE', m.hkey, ttl)
  if m.kind == 'w' then redis.call('PEXPIRE', m.zkey, ttl) end
end

local function flush(m) -- write a member after a grant
  local kind = m.kind
  if kind == 'w' then
    local renew = extend(m, m.cut == -1 or m.cut == 0 and m.empty) -- a new log has no expiry yet
    if m.cut == -1 then
      redis.call('DEL', m.zkey)
    elseif m.cut > 0 then
      redis.call('ZREMRANGEBYRANK', m.zkey, 0, m.cut - 1)
    end
    redis.call('ZADD', m.zkey, m.total, fmt(m.entry) .. ':' .. m.seq)
    redis.call('HSET', m.hkey, 'a', m.lbase, 'b', m.total, 'last', m.last, 'seq', m.seq, 'seen', m.now,
               'exp', m.exp)
    if renew then expire(m) end
  else
    local renew = extend(m, false)
    if kind == 'b' then
      redis.call('HSET', m.hkey, 'a', m.tat, 'seen', m.now, 'exp', m.exp)
    else
      redis.call('HSET', m.hkey, 'a', m.start, 'b', m.count, 'seen', m.now, 'exp', m.exp)
    end
    if renew then expire(m) end
  end
end

-- _core.decide: e_i = earliest on each member; d = max(e_i - now_i); record at max(now_i + d, e_i).
local function decide(commit)
  for i = 1, n do load(members[i]) end
  local out
  if n == 1 then
    local m = members[1]
    local at = earliest(m, m.now, x)
    local delay = at - m.now
    if not commit or (max_wait ~= nil and delay > max_wait) then
      return {((not commit) or max_wait == nil or delay <= max_wait) and '1' or '0', fmt(delay)}
    end
    out = {'1', fmt(delay), fmt(at), fmt(record(m, at, x))}
  else
    local firsts = {}
    local delay = NEG_INF
    for i = 1, n do
      local m = members[i]
      firsts[i] = earliest(m, m.now, x)
      local d = firsts[i] - m.now
      if d > delay then delay = d end
    end
    if not commit or (max_wait ~= nil and delay > max_wait) then
      return {((not commit) or max_wait == nil or delay <= max_wait) and '1' or '0', fmt(delay)}
    end
    out = {'1', fmt(delay)}
    for i = 1, n do
      local m = members[i]
      local at = m.now + delay
      if at < firsts[i] then at = firsts[i] end -- rounding: never before the member's own earliest
      out[#out + 1] = fmt(at)
      out[#out + 1] = fmt(record(m, at, x))
    end
  end
  for i = 1, n do expires_at(members[i]) end -- may still need a period: decide it before writing
  return out
end

-- WindowState.unrecord: undo the entry recorded at `at` for `cost`, if it is still there.
local function unrecord(m, at, cost)
  local top = redis.call('ZCARD', m.zkey) - 1
  while top >= 0 do
    local low = top - 63
    if low < 0 then low = 0 end
    local batch = redis.call('ZRANGE', m.zkey, low, top, 'WITHSCORES')
    for k = #batch - 1, 1, -2 do
      local member, cum = batch[k], tonumber(batch[k + 1])
      local t = time_of(member)
      if t == at then
        local before
        if k > 1 then
          before = tonumber(batch[k - 1])
        elseif low > 0 then
          before = tonumber(redis.call('ZRANGE', m.zkey, low - 1, low - 1, 'WITHSCORES')[2])
        else
          before = m.base
        end
        if cum - before == cost then
          local later = redis.call('ZRANGEBYSCORE', m.zkey, '(' .. fmt(cum), '+inf')
          redis.call('ZREM', m.zkey, member)
          for _, other in ipairs(later) do redis.call('ZINCRBY', m.zkey, -cost, other) end
          m.total = m.total - cost
          local tail = redis.call('ZRANGE', m.zkey, -1, -1)
          if #tail == 0 then
            redis.call('HSET', m.hkey, 'b', m.total)
            redis.call('HDEL', m.hkey, 'last')
          else
            redis.call('HSET', m.hkey, 'b', m.total, 'last', time_of(tail[1]))
          end
          return
        end
      elseif t < at then
        return
      end
    end
    top = low - 1
  end
end

local function cancel()
  for i = 1, n do
    local m = members[i]
    local stamp = words(ARGV[1 + n + i])
    local at, aux = tonumber(stamp[1]), tonumber(stamp[2])
    load(m)
    if m.exists then -- a missing key is a fresh state, on which cancel changes nothing
      local kind = m.kind
      if kind == 'w' then
        unrecord(m, at, x)
      elseif kind == 'b' then
        local from = at
        if aux > at then from = aux end
        local booked = from + x * m.span
        if m.tat == booked then m.tat = aux else m.tat = m.tat - x * m.span end
        redis.call('HSET', m.hkey, 'a', m.tat)
      elseif m.start == aux then
        m.count = m.count - x
        redis.call('HSET', m.hkey, 'b', m.count)
      end
    end
  end
  return {'1'}
end

local function pause()
  local renew = {}
  for i = 1, n do
    local m = members[i]
    load(m)
    local at = m.now + x
    if at > m.hold then m.hold = at end
    renew[i] = extend(m, false)
  end
  for i = 1, n do
    local m = members[i]
    redis.call('HSET', m.hkey, 'hold', m.hold, 'seen', m.now, 'exp', m.exp)
    if renew[i] then expire(m) end
  end
  return {'1'}
end

local function used(m) -- _core.used
  local kind = m.kind
  local now = m.now
  if kind == 'w' then
    prune(m, now)
    return m.total - m.lbase
  elseif kind == 'b' then
    return nil
  end
  local start = period(m, now)
  if m.start == start then return m.count end
  return 0
end

local function available(m) -- _core.available
  local kind = m.kind
  local now = m.now
  if kind == 'w' then
    prune(m, now)
    if m.hold > now or (not m.empty and m.last > now) then return 0 end
    return m.limit - (m.total - m.lbase)
  elseif kind == 'b' then
    if m.hold > now then return 0 end
    local debt = m.tat - now
    if debt <= 0 then return m.limit end
    local level = m.limit - debt / m.span
    if level > 0 then return level end
    return 0
  end
  local start = period(m, now)
  if m.hold > now or m.start > start then return 0 end
  if m.start == start then return m.limit - m.count end
  return m.limit - 0
end

local function read(what)
  local value = nil
  for i = 1, n do
    local m = members[i]
    load(m)
    local v
    if what == 'u' then v = used(m) or available(m) else v = available(m) end
    if value == nil or v < value then value = v end
  end
  return {fmt(value)}
end

if op == 'a' or op == 'w' or op == 'u' or op == 'v' or op == 'p' then
  local ok, result = pcall(function()
    if op == 'a' or op == 'w' then return decide(op == 'a') end
    if op == 'p' then return pause() end
    return read(op)
  end)
  if not ok then
    if type(result) == 'table' and result.rw_need then return {'C', fmt(result.rw_need)} end
    error(result)
  end
  if op == 'a' and result[1] == '1' and #result > 2 then
    for i = 1, n do flush(members[i]) end
  end
  return result
elseif op == 'c' then
  return cancel()
elseif op == 'r' then
  for i = 1, n do redis.call('DEL', members[i].hkey, members[i].zkey) end
  return {'1'}
end
return redis.error_reply('ratewindow: unknown op ' .. tostring(op))
