-- Submit one run: create its record and queue it, atomically, in one round trip.
-- KEYS: 1 target (the priority stream, or the queue's delayed zset), 2 run hash,
--       3 recent-runs zset, 4 events stream, 5 queues set
-- ARGV: 1 mode ("stream"|"delayed"), 2 due ms (delayed only), 3 run id, 4 env, 5 body,
--       6 created ms, 7 history size, 8 events maxlen, 9 queue, 10 task, 11 state,
--       12.. extra record fields as name/value pairs
-- Returns 1 when created, 0 when another run with this id already exists (nothing
-- changes). The same submission sent again, byte for byte, also returns 1 and changes
-- nothing: a client library re-sends a call whose reply a dropped connection lost.
-- (Every record has an env, so setting it only where none is tests for the run too.)
if redis.call('HSETNX', KEYS[2], 'env', ARGV[4]) == 0 then
  return redis.call('HGET', KEYS[2], 'env') == ARGV[4] and 1 or 0
end
local record = {'task', ARGV[10], 'state', ARGV[11], 'queue', ARGV[9],
                'created_at', ARGV[6], 'attempts', 0, 'body', ARGV[5]}
for i = 12, #ARGV, 2 do
  record[#record + 1] = ARGV[i]
  record[#record + 1] = ARGV[i + 1]
end
redis.call('HSET', KEYS[2], unpack(record))
if ARGV[1] == 'stream' then
  redis.call('XADD', KEYS[1], '*', 'env', ARGV[4], 'body', ARGV[5])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[3])
if redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[7]) then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[7]) + 1))
end
redis.call('SADD', KEYS[5], ARGV[9])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*',
           'kind', 'run', 'id', ARGV[3], 'state', ARGV[11], 'task', ARGV[10], 'queue', ARGV[9])
return 1
