-- ratewindow: the decision core (ratewindow/_core.py), ported to Redis Lua. Loaded once with
-- SCRIPT LOAD and called with EVALSHA by ratewindow/stores/_redis.py.
--
-- One call acts on every member of a limiter set, all-or-nothing: it reads and decides first and
-- writes only after the decision, so a refused or aborted call leaves no trace. Each step mirrors
-- the Python method it names, in the same floating-point operations, so both make bit-identical
-- decisions (tests/test_store_equivalence.py checks it).
--
-- Redis runs scripts on one thread, so every microsecond here is one the whole node loses. The
-- acquire path is written out in the main chunk (each closure a script creates costs it on every
-- call), allocates one table per member, and makes six commands for a grant on a busy window and
-- a daily quota: TIME, a GET per member, GETRANGE when the window's oldest entry expired, and a
-- SETRANGE per member and log. Numbers travel as IEEE doubles packed little-endian (the `struct`
-- library Redis ships): exact both ways, one C call for many, where text would cost a parse each.
--
-- KEYS, per member in order (all in one hash slot): its state (a string of packed doubles), then,
--   for a window only, its log (a string of records).
--   state   window: base, total, last, hold, seen, exp, head, off, n
--           bucket: tat, hold, seen, exp          daily: start, count, hold, seen, exp
--           base = total before the first live entry; last = time of the newest entry; head =
--           time of the oldest live entry; off = index of that entry's record, n = records in the
--           log (bytes past them are left over from a cancel: the next append overwrites them);
--           tat = the bucket's theoretical arrival time; start, count = the booked day and its
--           count; hold = paused until; seen = the latest time a write was decided at; exp = when
--           the state stops mattering (plus slack), the keys' expiry. -inf stands for "none".
--   log     WindowState's two lists as one string of 16-byte records, packed doubles (time, cum):
--           an entry's time and the cumulative cost up to and including it. Times never decrease
--           and cums always increase along it. Appending is a SETRANGE at the end, expiry moves
--           `off` forward, and the dead front is cut off (one SET) only once it is more than 32
--           records and half the log, as WindowState.prune does: O(1) per grant, amortised.
-- ARGV[1], one string: op (one byte), then doubles now (-inf: the server's TIME), x (the cost;
--   seconds for op 'p'), max_wait (+inf: none), min_ttl (the least key expiry, ms); then per
--   member: kind (one byte: 'w', 'b' or 'd'), doubles limit and span, a uint16 count and that many
--   doubles (a daily member's consecutive local day starts around now); ops 'c' and 'k' only:
--   then per member its stamp, doubles at and aux.
-- ops: 'a' acquire, 'w' wait time (no write), 'c' cancel, 'k' confirm, 'p' pause, 'u' used (one
--      member), 'v' available, 'r' reset.
-- Returns one string of packed doubles: 'a'/'w' granted (1 or 0), delay, then at_i, aux_i per
--   member when recorded, and after them, for 'a', each daily member's count in the day it was
--   booked into (the local fallback's knowledge of what is left); 'u'/'v' the value; 'c'/'p'/'r' 1; or -inf, t when a daily member needs
--   the period containing t, which was not passed: nothing was written, the caller retries with more;
--   'k' as 'a': granted (1, 0, then each member's new stamp) or not (0, seconds to wait).

local NEG_INF = -math.huge
local call, sunpack, spack, sub = redis.call, struct.unpack, struct.pack, string.sub
local W_STATE, B_STATE, D_STATE = '<ddddddddd', '<dddd', '<ddddd'
local REC = 16 -- bytes per log record

if redis.replicate_commands then pcall(redis.replicate_commands) end -- Redis < 5: TIME, then writes

local blob = ARGV[1]
local op = sub(blob, 1, 1)
local now, x, max_wait, min_ttl, pos = sunpack('<dddd', blob, 2)
if now == NEG_INF then
  local t = call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Each member, with its state loaded (every field it will get is set here: no table grows later).
local members = {}
local n = 0
do
  local k = 1
  local nkeys = #KEYS
  local load = op ~= 'r'
  while k <= nkeys do
    local kind = sub(blob, pos, pos)
    local limit, span, count
    limit, span, count, pos = sunpack('<ddH', blob, pos + 1)
    local b = false
    if count > 0 then
      b = {}
      for j = 1, count do b[j], pos = sunpack('<d', blob, pos) end
    end
    local skey = KEYS[k]
    local s = load and call('GET', skey)
    local m
    if kind == 'w' then
      local base, total, last, hold, seen, exp, head, off, nrec = 0, 0, NEG_INF, NEG_INF, NEG_INF,
        NEG_INF, NEG_INF, 0, 0
      if s then base, total, last, hold, seen, exp, head, off, nrec = sunpack(W_STATE, s) end
      m = {kind = kind, limit = limit, span = span, b = b, skey = skey, zkey = KEYS[k + 1], exists = s,
           now = seen > now and seen or now, -- time never goes backwards per key
           base = base, total = total, last = last, hold = hold, exp = exp, head = head, off = off,
           n = nrec, lbase = base, lhead = head, loff = off, empty = false, at = 0}
      k = k + 2
    elseif kind == 'b' then
      local tat, hold, seen, exp = NEG_INF, NEG_INF, NEG_INF, NEG_INF
      if s then tat, hold, seen, exp = sunpack(B_STATE, s) end
      m = {kind = kind, limit = limit, span = span, b = b, skey = skey, exists = s,
           now = seen > now and seen or now, tat = tat, hold = hold, exp = exp, at = 0}
      k = k + 1
    else
      local start, cnt, hold, seen, exp = NEG_INF, 0, NEG_INF, NEG_INF, NEG_INF
      if s then start, cnt, hold, seen, exp = sunpack(D_STATE, s) end
      m = {kind = kind, limit = limit, span = span, b = b, skey = skey, exists = s,
           now = seen > now and seen or now, start = start, count = cnt, hold = hold, exp = exp,
           stop = false, at = 0}
      k = k + 1
    end
    n = n + 1
    members[n] = m
  end
end

-- Calendar.period: the (start, end) of the local day containing t among boundaries b; nil if b
-- does not cover t.
local function period(b, t)
  if b then
    for k = 1, #b - 1 do
      if b[k] <= t and t < b[k + 1] then return b[k], b[k + 1] end
    end
  end
  return nil
end

local function need_period(t) return spack('<dd', NEG_INF, t) end

-- Records i..j of a window's log (0-based), as one string.
local function records(m, i, j) return call('GETRANGE', m.zkey, i * REC, j * REC + REC - 1) end

-- WindowState.prune, without writing: m.loff is the first live record after it, m.lbase the base
-- after, m.lhead the time of the oldest live entry, m.empty whether none is live.
local function prune(m, t)
  m.lbase, m.lhead, m.loff = m.base, m.head, m.off
  local n = m.n
  if m.off >= n then
    m.empty = true
    return
  end
  local span = m.span
  if m.last + span <= t then -- times never decrease along the log: the last expired, so all did
    m.lbase, m.lhead, m.loff, m.empty = m.total, NEG_INF, n, true
    return
  end
  m.empty = false
  if m.head + span > t then return end -- the oldest live entry still counts: so do the others
  local first, size = m.off, 2 -- usually one entry expired since the last grant: read two
  while true do -- ends: the last entry is live
    local upto = first + size - 1
    if upto >= n then upto = n - 1 end
    local s = records(m, first, upto)
    for r = 0, upto - first do
      local at, cum = sunpack('<dd', s, 1 + REC * r)
      if at + span <= t then
        m.lbase, m.loff = cum, first + r + 1
      else
        m.lhead = at
        return
      end
    end
    first = upto + 1
    if size < 64 then size = size * 4 end
  end
end

-- bisect_left over the live records' cums: the first record whose cum >= target (one exists:
-- the last one's cum is the total). With unit costs the cums of live records count up by one
-- from the base, so the guess is checked with one read; otherwise a binary search.
local function first_reaching(m, target)
  local lo, hi = m.loff, m.n - 1
  local guess = lo + math.ceil(target - m.lbase) - 1
  if guess < lo then guess = lo elseif guess > hi then guess = hi end
  if guess > lo then
    local _, before, at, cum = sunpack('<dddd', records(m, guess - 1, guess))
    if cum >= target and before < target then return at end
  else
    local at, cum = sunpack('<dd', records(m, lo, lo))
    if cum >= target then return at end
  end
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local _, cum = sunpack('<dd', records(m, mid, mid))
    if cum < target then lo = mid + 1 else hi = mid end
  end
  return (sunpack('<d', records(m, lo, lo)))
end

-- The keys' expiry (exp, store time) moves only when the state needs it later (expires_at: when
-- the state stops mattering, as an expired key is a fresh one) and then a little further (a
-- quarter of a window or of a bucket's refill), so most writes keep the expiry they have.
-- Returns whether it moved, or nil and the 'need a period' reply.
local function extend(m, force)
  local need = m.hold
  local kind = m.kind
  if kind == 'w' then
    local until_ = m.last + m.span
    if until_ > need then need = until_ end
  elseif kind == 'b' then
    if m.tat > need then need = m.tat end
  elseif m.start > NEG_INF then
    local stop = m.stop
    if not stop then
      local b = m.b
      if b and m.start < b[1] then
        stop = b[1]
      else
        local _
        _, stop = period(b, m.start)
        if not stop then return nil, need_period(m.start) end
      end
    end
    if stop > need then need = stop end
  end
  if need <= m.exp and not force then return false end
  if kind == 'w' then
    need = need + m.span / 4
  elseif kind == 'b' then
    need = need + m.limit * m.span / 4
  end
  m.exp = need
  return true
end

-- Write a member's state: in place, keeping its expiry, unless the expiry moves (renew) or the key
-- is new; a window's log gets the same expiry.
local function save(m, renew)
  local kind = m.kind
  local s
  if kind == 'w' then
    s = spack(W_STATE, m.base, m.total, m.last, m.hold, m.now, m.exp, m.head, m.off, m.n)
  elseif kind == 'b' then
    s = spack(B_STATE, m.tat, m.hold, m.now, m.exp)
  else
    s = spack(D_STATE, m.start, m.count, m.hold, m.now, m.exp)
  end
  if renew or not m.exists then
    local ttl = math.ceil((m.exp - m.now) * 1000) + 1
    if ttl < min_ttl then ttl = min_ttl end
    call('SET', m.skey, s, 'PX', ttl)
    if renew and kind == 'w' then call('PEXPIRE', m.zkey, ttl) end
  else
    call('SETRANGE', m.skey, 0, s)
  end
end

if op == 'a' or op == 'w' then
  -- _core.decide: e_i = earliest on each member; d = max(e_i - now_i); record at max(now_i + d, e_i).
  local delay = NEG_INF
  for i = 1, n do
    local m = members[i]
    local t = m.now
    local kind = m.kind
    local base
    if kind == 'w' then -- WindowState.earliest
      prune(m, t)
      if m.empty then
        base = t
      else
        local last = m.last
        base = last > t and last or t
        local total, lbase, limit = m.total, m.lbase, m.limit
        if total - lbase + x > limit then
          local free = first_reaching(m, total - (limit - x)) + m.span
          if free > base then base = free end
        end
      end
    elseif kind == 'b' then -- BucketState.earliest
      local fits = m.tat - (m.limit - x) * m.span
      base = fits > t and fits or t
    else -- DailyState.earliest
      local start, stop = period(m.b, t)
      if not start then return need_period(t) end
      local in_use
      if m.start > start then -- already booked into a later day: queue behind that booking
        base = m.start
        local _, later = period(m.b, base)
        if not later then return need_period(base) end
        stop = later
        in_use = m.count
      else
        base = t
        in_use = m.start == start and m.count or 0
      end
      if in_use + x > m.limit then base = stop end
    end
    if base < m.hold then base = m.hold end
    m.at = base
    if base - t > delay then delay = base - t end
  end
  if op == 'w' or delay > max_wait then
    return spack('<dd', (op == 'w' or delay <= max_wait) and 1 or 0, delay)
  end
  -- _core._record on each member (no write yet: a missing period still aborts cleanly).
  local parts = {spack('<dd', 1, delay)}
  local counts = false -- daily members' counts, after the stamps (a table only when there is one)
  local renew = {}
  for i = 1, n do
    local m = members[i]
    local at = m.now + delay
    if at < m.at then at = m.at end -- rounding: never before the member's own earliest
    local kind = m.kind
    local aux = 0
    local force = false
    if kind == 'w' then
      m.total = m.total + x
      m.last = at
      if m.empty then m.lhead = at end
      force = m.empty -- a new log has no expiry yet
    elseif kind == 'b' then
      aux = m.tat
      m.tat = (aux > at and aux or at) + x * m.span
    else
      local start, stop = period(m.b, at)
      if not start then return need_period(at) end
      if start == m.start then m.count = m.count + x else m.start, m.count = start, x end
      m.stop = stop
      aux = start
      counts = counts or {}
      counts[#counts + 1] = spack('<d', m.count)
    end
    local moved, reply = extend(m, force)
    if moved == nil then return reply end
    renew[i] = moved
    parts[i + 1] = spack('<dd', at, aux)
  end
  for i = 1, n do -- write
    local m = members[i]
    if m.kind == 'w' then
      local entry = spack('<dd', m.last, m.total)
      local off, nrec = m.loff, m.n
      if m.empty then -- nothing live (a fresh limiter, or every entry expired): a fresh log
        off, nrec = 0, 1
        call('SET', m.zkey, entry)
      else
        if off > 32 and off * 2 > nrec then -- the dead front is long: cut it off
          call('SET', m.zkey, records(m, off, nrec - 1))
          off, nrec = 0, nrec - off
          renew[i] = true -- SET dropped the log's expiry
        end
        call('SETRANGE', m.zkey, nrec * REC, entry)
        nrec = nrec + 1
      end
      m.base, m.head, m.off, m.n = m.lbase, m.lhead, off, nrec
    end
    save(m, renew[i])
  end
  if counts then return table.concat(parts) .. table.concat(counts) end
  return table.concat(parts)
end

-- The rarer operations.

local function read(what) -- _core.used ('u', one member) and _core.available ('v')
  local value = nil
  for i = 1, n do
    local m = members[i]
    local t = m.now
    local kind = m.kind
    local v
    if kind == 'w' then
      prune(m, t)
      if what == 'u' then
        v = m.total - m.lbase
      elseif m.hold > t or (not m.empty and m.last > t) then
        v = 0
      else
        v = m.limit - (m.total - m.lbase)
      end
    elseif kind == 'b' then -- for a bucket, used means the tokens left: both are available
      if m.hold > t then
        v = 0
      else
        local debt = m.tat - t
        if debt <= 0 then
          v = m.limit
        else
          v = m.limit - debt / m.span
          if v <= 0 then v = 0 end
        end
      end
    else
      local start = period(m.b, t)
      if not start then return need_period(t) end
      local count = m.start == start and m.count or 0
      if what == 'u' then
        v = count
      elseif m.hold > t or m.start > start then
        v = 0
      else
        v = m.limit - count
      end
    end
    if value == nil or v < value then value = v end
  end
  return spack('<d', value)
end

-- WindowState.unrecord: undo the entry recorded at `at` for `cost`, if it is still live.
local function unrecord(m, at, cost)
  local off, top = m.off, m.n - 1
  while top >= off do
    local low = top - 63
    if low < off then low = off end
    local s = records(m, low, top)
    for r = top - low, 0, -1 do
      local t, cum = sunpack('<dd', s, 1 + REC * r)
      if t == at then
        local k = low + r
        local before
        if r > 0 then
          before = select(2, sunpack('<dd', s, 1 + REC * (r - 1)))
        elseif k > off then
          before = select(2, sunpack('<dd', records(m, k - 1, k - 1)))
        else
          before = m.base
        end
        if cum - before == cost then
          local n = m.n
          if k < n - 1 then -- the later entries move down one record, each cum less cost
            local later = records(m, k + 1, n - 1)
            local moved = {}
            for j = 0, n - 2 - k do
              local lt, lcum = sunpack('<dd', later, 1 + REC * j)
              moved[j + 1] = spack('<dd', lt, lcum - cost)
            end
            call('SETRANGE', m.zkey, k * REC, table.concat(moved))
          end
          m.n = n - 1
          m.total = m.total - cost
          if m.n <= off then -- no live entry left
            m.last, m.head = NEG_INF, NEG_INF
          else
            m.last = sunpack('<d', records(m, m.n - 1, m.n - 1))
            m.head = sunpack('<d', records(m, off, off))
          end
          return true
        end
      elseif t < at then
        return false
      end
    end
    top = low - 1
  end
  return false
end

-- The first live record of a window (index >= loff, after prune) whose time is > t (with
-- `after`) or >= t; n if none. Times never decrease along the log: a binary search.
local function first_past(m, t, after)
  local lo, hi = m.loff, m.n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local at = sunpack('<d', records(m, mid, mid))
    if at < t or (after and at == t) then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- The cumulative cost up to and including live record i (the base before the first).
local function cum_upto(m, i)
  if i < m.loff then return m.lbase end
  return (select(2, sunpack('<dd', records(m, i, i))))
end

-- WindowState.find: the live record recorded at `at` for `cost`, or -1.
local function find(m, at, cost)
  local i = first_past(m, at, false)
  while i < m.n do
    local t, cum = sunpack('<dd', records(m, i, i))
    if t ~= at then return -1 end
    if cum - cum_upto(m, i - 1) == cost then return i end
    i = i + 1
  end
  return -1
end

-- _core.confirm: each window member's grant recorded at `at` moves to now, if the units recorded
-- at or before now within the last span (this grant's included) fit the limit on every member;
-- otherwise nothing is written and the reply is the seconds to wait (WindowState.confirm_wait).
local function confirm()
  local wait = 0
  local plan = {}
  local stamps = {}
  for i = 1, n do
    local m = members[i]
    local at, aux
    at, aux, pos = sunpack('<dd', blob, pos)
    stamps[i], stamps[i + n] = spack('<dd', at, aux), aux
    if m.kind == 'w' then
      local t = m.now
      local w
      if at > t then
        w = at - t
      else
        prune(m, t)
        local j, k = m.loff, -1
        if not m.empty then
          j = first_past(m, t, true)
          k = find(m, at, x)
        end
        local upto = cum_upto(m, j - 1)
        local in_window = upto - m.lbase
        if k < 0 then in_window = in_window + x end
        w = m.hold - t
        if in_window > m.limit then
          local free = first_reaching(m, m.lbase + (in_window - m.limit)) + m.span - t
          if free > w then w = free end
        end
        plan[i] = {j, k, upto}
      end
      if w > wait then wait = w end
    end
  end
  if wait > 0 then return spack('<dd', 0, wait) end
  local parts = {spack('<dd', 1, 0)}
  for i = 1, n do
    local m = members[i]
    local p = plan[i]
    parts[i + 1] = stamps[i]
    if p then
      parts[i + 1] = spack('<dd', m.now, stamps[i + n])
      local t = m.now
      local j, k, upto = p[1], p[2], p[3]
      local force = false
      if k < 0 and m.empty then -- nothing live: a fresh log
        call('SET', m.zkey, spack('<dd', t, m.total + x))
        m.loff, m.n, m.lhead, m.last = 0, 1, t, t
        m.total = m.total + x
        force = true
      elseif k < 0 then -- recorded anew at position j: the later records' cums grow by x
        local parts = {spack('<dd', t, upto + x)}
        if j < m.n then
          local later = records(m, j, m.n - 1)
          for r = 0, m.n - 1 - j do
            local lt, lc = sunpack('<dd', later, 1 + REC * r)
            parts[r + 2] = spack('<dd', lt, lc + x)
          end
        end
        call('SETRANGE', m.zkey, j * REC, table.concat(parts))
        m.n = m.n + 1
        m.total = m.total + x
        if j == m.n - 1 then m.last = t end
        if j == m.loff then m.lhead = t end
      else -- records k+1 .. j-1 move down one place, each cum less x; ours goes at j-1
        local parts = {}
        if k < j - 1 then
          local between = records(m, k + 1, j - 1)
          for r = 0, j - 2 - k do
            local lt, lc = sunpack('<dd', between, 1 + REC * r)
            parts[r + 1] = spack('<dd', lt, lc - x)
          end
        end
        parts[#parts + 1] = spack('<dd', t, upto)
        call('SETRANGE', m.zkey, k * REC, table.concat(parts))
        if j - 1 == m.n - 1 then m.last = t end
        if k == m.loff then m.lhead = sunpack('<d', records(m, k, k)) end
      end
      m.base, m.head, m.off = m.lbase, m.lhead, m.loff
      local moved, reply = extend(m, force)
      if moved == nil then return reply end
      save(m, moved)
    end
  end
  return table.concat(parts)
end

if op == 'u' or op == 'v' then
  return read(op)
elseif op == 'k' then
  return confirm()
elseif op == 'p' then
  local renew = {}
  for i = 1, n do
    local m = members[i]
    local at = m.now + x
    if at > m.hold then m.hold = at end
    local moved, reply = extend(m, false)
    if moved == nil then return reply end
    renew[i] = moved
  end
  for i = 1, n do save(members[i], renew[i]) end
  return spack('<d', 1)
elseif op == 'c' then
  for i = 1, n do
    local m = members[i]
    local at, aux
    at, aux, pos = sunpack('<dd', blob, pos)
    if m.exists then -- a missing key is a fresh state, on which cancel changes nothing
      local kind = m.kind
      local changed = true
      if kind == 'w' then
        changed = unrecord(m, at, x)
      elseif kind == 'b' then
        local booked = (aux > at and aux or at) + x * m.span
        if m.tat == booked then m.tat = aux else m.tat = m.tat - x * m.span end
      elseif m.start == aux then
        m.count = m.count - x
      else
        changed = false
      end
      if changed then save(m, false) end
    end
  end
  return spack('<d', 1)
elseif op == 'r' then
  for i = 1, n do
    local m = members[i]
    if m.zkey then call('DEL', m.skey, m.zkey) else call('DEL', m.skey) end
  end
  return spack('<d', 1)
end
return redis.error_reply('ratewindow: unknown op ' .. tostring(op))
