-- Open a chord before its header is submitted: the hash its members count down in.
-- KEYS: 1 chord hash (of the body's partition, as every header member)
-- ARGV: see the locals below
-- Returns 1 when opened, 0 when a chord of this id exists (nothing changes).
-- The hash has no TTL while the header runs (finish.lua sets one when the body is
-- submitted or ended), so a long header never loses its count.
local size, body_id, task, queue = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local env, body, content_type, channel = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

if redis.call('HSETNX', KEYS[1], 'id', body_id) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'size', size, 'left', size, 'task', task, 'queue', queue,
           'env', env, 'body', body, 'ct', content_type, 'channel', channel)
return 1
