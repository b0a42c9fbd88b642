-- Record one webhook attempt, if no other gateway recorded this attempt number first.
-- KEYS: 1 delivery hash, 2 run hash, 3 due zset
-- ARGV: see the locals below
-- Returns 1 when recorded, 0 when the delivery is gone or the attempt was recorded already.
local run_id, attempt = ARGV[1], tonumber(ARGV[2])
local attempts_log = ARGV[3]  -- JSON list, this attempt included
local view = ARGV[4]  -- the run's "webhook" field (JSON)
local next_ms = ARGV[5]  -- the next attempt, or "" when this one was the last

local recorded = redis.call('HGET', KEYS[1], 'attempts')
if not recorded or tonumber(recorded) ~= attempt - 1 then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then  -- an expired record is not brought back
  redis.call('HSET', KEYS[2], 'webhook', view)
end
if next_ms == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], run_id)
else
  redis.call('HSET', KEYS[1], 'attempts', attempt, 'log', attempts_log)
  redis.call('ZADD', KEYS[3], next_ms, run_id)
end
return 1
