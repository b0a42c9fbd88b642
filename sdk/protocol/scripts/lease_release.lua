-- Give up a lease, only if we hold it.
-- KEYS: 1 the lease
-- ARGV: 1 holder id
-- Returns 1 if deleted, 0 if not ours.
local holder = ARGV[1]

if redis.call('GET', KEYS[1]) == holder then return redis.call('DEL', KEYS[1]) end
return 0
