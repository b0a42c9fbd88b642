-- Queue a run's webhook once: called for every terminal event, it acts only the first time.
-- KEYS: 1 run hash, 2 delivery hash, 3 fresh zset (first attempts, see webhook_claim.lua)
-- ARGV: see the locals below
-- Returns 1 when queued, 0 when the run already has (or had) a delivery.
local run_id, url, payload, now, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local view = ARGV[6]  -- the run's "webhook" field (JSON: url, state pending, no attempts)

if redis.call('HEXISTS', KEYS[1], 'webhook') == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'webhook', view)
redis.call('HSET', KEYS[2], 'url', url, 'payload', payload, 'attempts', 0,
           'first_at', now, 'log', '[]')
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], 'NX', now, run_id)
return 1
