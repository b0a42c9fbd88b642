-- Queue a run's webhook once: called for every terminal event, it acts only the first time.
-- KEYS: 1 run hash, 2 delivery hash, 3 fresh zset (first attempts, see webhook_claim.lua)
-- ARGV: 1 run id, 2 url, 3 payload (the run JSON), 4 now ms, 5 delivery ttl s,
--       6 the run's "webhook" field (JSON: url, state pending, no attempts)
-- Returns 1 when queued, 0 when the run already has (or had) a delivery.
if redis.call('HEXISTS', KEYS[1], 'webhook') == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'webhook', ARGV[6])
redis.call('HSET', KEYS[2], 'url', ARGV[2], 'payload', ARGV[3], 'attempts', 0,
           'first_at', ARGV[4], 'log', '[]')
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[1])
return 1
