-- Claim due webhook deliveries: each is pushed a lease into the future, so exactly one
-- gateway makes each attempt; a gateway that dies mid-attempt leaves it due again.
-- KEYS: 1 due zset
-- ARGV: 1 now ms, 2 lease ms, 3 at most this many
-- Returns the claimed run ids.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', until_ms, id)
end
return due
