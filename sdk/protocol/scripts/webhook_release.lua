-- Hand claimed webhook deliveries back without an attempt: due now (a stopping gateway,
-- so another makes them at once) or a little later (a receiver at its cap of attempts).
-- Each only if its due time is still the lease its claim set: an attempt recorded since
-- has moved it (or removed it), and a lapsed claim may belong to another gateway now.
-- KEYS: 1 due zset
-- ARGV: 1 when they are due again (ms), then pairs of run id and its claim's lease end
-- Returns how many were handed back.
local due = ARGV[1]
local FIRST_PAIR = 2

local n = 0
for i = FIRST_PAIR, #ARGV, 2 do
  local run_id, lease_end = ARGV[i], tonumber(ARGV[i + 1])
  local score = redis.call('ZSCORE', KEYS[1], run_id)
  if score and tonumber(score) == lease_end then
    redis.call('ZADD', KEYS[1], 'XX', due, run_id)
    n = n + 1
  end
end
return n
