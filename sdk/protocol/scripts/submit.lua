-- Submit one run: create its record and queue it, atomically, in one round trip.
-- KEYS: 1 target (the priority stream, or the queue's delayed zset), 2 run hash,
--       3 history zset, 4 events stream, 5 queues set (all of the run's partition)
-- ARGV: see the locals below; then extra record fields as name/value pairs
-- Returns 1 when created, 0 when another run with this id already exists (nothing
-- changes). The same submission sent again, byte for byte, also returns 1 and changes
-- nothing: a client library re-sends a call whose reply a dropped connection lost.
-- (Every record has an env, so setting it only where none is tests for the run too.)
local mode, due, run_id, env, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local created, history_size, events_max = ARGV[6], tonumber(ARGV[7]), ARGV[8]
local queue, task, state = ARGV[9], ARGV[10], ARGV[11]
local EXTRA = 12

if redis.call('HSETNX', KEYS[2], 'env', env) == 0 then
  return redis.call('HGET', KEYS[2], 'env') == env and 1 or 0
end
local record = {'task', task, 'state', state, 'queue', queue,
                'created_at', created, 'attempts', 0, 'body', body}
for i = EXTRA, #ARGV, 2 do
  record[#record + 1] = ARGV[i]
  record[#record + 1] = ARGV[i + 1]
end
redis.call('HSET', KEYS[2], unpack(record))
if mode == 'stream' then
  redis.call('XADD', KEYS[1], '*', 'env', env, 'body', body)
else
  redis.call('ZADD', KEYS[1], due, run_id)
end
redis.call('ZADD', KEYS[3], created, run_id)
if redis.call('ZCARD', KEYS[3]) > history_size then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(history_size + 1))
end
redis.call('SADD', KEYS[5], queue)
run_event(KEYS[4], events_max, run_id, state, task, queue)
return 1
