-- Store a run's outcome, then acknowledge it: the outcome is durable before the ack.
-- KEYS: 1 run hash, 2 stream the entry came from, 3 events stream, 4 dead-letter stream
-- ARGV: 1 run id, 2 entry id, 3 group, 4 state, 5 now ms, 6 runtime ms, 7 ttl s,
--       8 events maxlen, 9 task, 10 queue, 11 done channel, 12.. outcome fields (name/value)
-- A DEAD run is also appended, with its message, to the dead-letter stream.
-- A run already terminal is only acknowledged: an outcome is written once (a parent
-- killing a child over its time limit may race the child's own finish). Returns 1 when
-- the outcome was stored, 0 when it was already there.
local current, stale = unpack(redis.call('HMGET', KEYS[1], 'state', 'error'))
if current == 'SUCCESS' or current == 'FAILURE' or current == 'REVOKED'
   or current == 'EXPIRED' or current == 'DEAD' then
  if ARGV[2] ~= '' then
    redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
    redis.call('XDEL', KEYS[2], ARGV[2])
  end
  return 0
end
local fields = {'state', ARGV[4], 'finished_at', ARGV[5]}
if ARGV[6] ~= '' then
  fields[#fields + 1] = 'runtime_ms'
  fields[#fields + 1] = ARGV[6]
end
for i = 12, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
if ARGV[4] == 'SUCCESS' and stale then  -- a success after retries shows no stale error
  redis.call('HDEL', KEYS[1], 'error', 'exc', 'exc_sig')
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[7])
if ARGV[4] == 'DEAD' then
  local env, body, err = unpack(redis.call('HMGET', KEYS[1], 'env', 'body', 'error'))
  local letter = redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'id', ARGV[1],
                            'env', env or '', 'body', body or '', 'error', err or '', 'at', ARGV[5])
  redis.call('HSET', KEYS[1], 'dead_entry', letter)
  redis.call('PERSIST', KEYS[1])  -- kept until requeued or purged, like the letter itself
end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*',
           'kind', 'run', 'id', ARGV[1], 'state', ARGV[4], 'task', ARGV[9], 'queue', ARGV[10])
redis.call('PUBLISH', ARGV[11], ARGV[4])
return 1
