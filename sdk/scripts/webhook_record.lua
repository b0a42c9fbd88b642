-- Record one webhook attempt, if no other gateway recorded this attempt number first.
-- KEYS: 1 delivery hash, 2 run hash, 3 due zset
-- ARGV: 1 run id, 2 attempt number, 3 attempts log (JSON list, this attempt included),
--       4 the run's "webhook" field (JSON), 5 next attempt ms, or "" when final
-- Returns 1 when recorded, 0 when the delivery is gone or the attempt was recorded already.
local attempts = redis.call('HGET', KEYS[1], 'attempts')
if not attempts or tonumber(attempts) ~= tonumber(ARGV[2]) - 1 then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then  -- an expired record is not brought back
  redis.call('HSET', KEYS[2], 'webhook', ARGV[4])
end
if ARGV[5] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'attempts', ARGV[2], 'log', ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
return 1
