-- Claim due webhook deliveries: each is pushed a lease into the future, so exactly one
-- gateway makes each attempt; a gateway that dies mid-attempt leaves it due again.
-- First attempts wait in their own zset and get at least half of every claim while
-- they wait: a backlog of overdue retries to a receiver that is down delays the first
-- webhook to a healthy one by one claim, not by the whole backlog; and retries keep the
-- other half, so a flood of new deliveries does not starve them either.
-- KEYS: 1 due zset (retries, and every claimed delivery), 2 fresh zset (first attempts)
-- ARGV: see the locals below
-- Returns the claimed run ids.
local now, lease_ms, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local retries = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
local fresh = redis.call('ZRANGE', KEYS[2], 0, limit - 1)
local n_fresh = math.min(#fresh, math.max(math.ceil(limit / 2), limit - #retries))
local until_ms = now + lease_ms
local claimed = {}
for i = 1, n_fresh do
  redis.call('ZREM', KEYS[2], fresh[i])
  redis.call('ZADD', KEYS[1], until_ms, fresh[i])
  claimed[#claimed + 1] = fresh[i]
end
for i = 1, math.min(#retries, limit - n_fresh) do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, retries[i])
  claimed[#claimed + 1] = retries[i]
end
return claimed
