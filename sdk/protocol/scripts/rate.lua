-- Shared rate limit for one task (GCRA, burst of one: Celery's token bucket of capacity 1).
-- KEYS: 1 the task's rate key
-- ARGV: see the locals below
-- Returns 0 when a run may start now (and takes its slot), else the ms to wait.
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])  -- interval: 1000 / runs per s

local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat > now then
  return tat - now
end
redis.call('SET', KEYS[1], now + interval, 'PX', interval * 2 + 1000)
return 0
