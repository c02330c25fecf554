-- ratewindow: the leases of one ConcurrencyLimit (ratewindow/_concurrency.py), atomically in Redis.
-- Loaded once with SCRIPT LOAD, called with EVALSHA by ratewindow/stores/_redis.py.
--
-- KEYS[1]   a sorted set of live leases: member = lease id, score = the store time it expires at.
-- ARGV      op ('l' take a lease, 'x' release one, 'n' count), now ('-' = the server's TIME),
--           lease id, limit (slots), span (seconds a lease lasts).
-- Returns   'l': '0' when the lease was taken, else the seconds until the earliest lease expires;
--           'x': '0'; 'n': the number of live leases.

if redis.replicate_commands then pcall(redis.replicate_commands) end -- Redis < 5: TIME, then writes

local key = KEYS[1]
local op, id, limit, span = ARGV[1], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local now
if ARGV[2] == '-' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[2])
end

redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', now)) -- expired: expiry <= now
if op == 'x' then
  redis.call('ZREM', key, id)
  return '0'
end
local held = redis.call('ZCARD', key)
if op == 'n' then return tostring(held) end
if held < limit then
  redis.call('ZADD', key, string.format('%.17g', now + span), id)
  -- The key lives as long as its newest lease: an abandoned limit leaves nothing behind.
  redis.call('PEXPIRE', key, math.ceil(span * 1000) + 1000)
  return '0'
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(first[2]) - now
if wait < 1e-9 then wait = 1e-9 end
return string.format('%.17g', wait)
