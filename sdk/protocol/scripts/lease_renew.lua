-- Renew a lease we hold.
-- KEYS: 1 the lease
-- ARGV: 1 holder id, 2 ttl ms
-- Returns 1 if renewed, 0 if another holds it (or none does).
local holder, ttl_ms = ARGV[1], ARGV[2]

if redis.call('GET', KEYS[1]) == holder then
  return redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
return 0
