-- Revoke a run: a queued or delayed one never starts; a running one may be terminated.
-- KEYS: 1 run hash, 2 revoked zset, 3 events stream, 4 control channel (PUBLISH only)
-- ARGV: 1 run id, 2 now ms, 3 keep revoked until (ms), 4 events maxlen, 5 done channel,
--       6 terminate ("1" or "0"), 7 key prefix, 8 result ttl s
-- Returns {outcome, state}: MISSING (no such run), FINISHED (already terminal, nothing
-- done), REVOKED (it will never start), RUNNING (marked; it runs on unless terminate),
-- TERMINATING (the worker running it was told to stop it).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'MISSING', ''}
end
if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED'
   or state == 'EXPIRED' or state == 'DEAD' then
  return {'FINISHED', state}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local task, queue = unpack(redis.call('HMGET', KEYS[1], 'task', 'queue'))
-- Anything but queued, delayed or between attempts is running (STARTED, PROGRESS, or a
-- custom state from update_state).
if state ~= 'PENDING' and state ~= 'SCHEDULED' and state ~= 'RETRY' then
  if ARGV[6] == '1' then
    redis.call('PUBLISH', KEYS[4], cjson.encode({op = 'terminate', run = ARGV[1]}))
    return {'TERMINATING', state}
  end
  return {'RUNNING', state}
end
-- Queued (PENDING), delayed (SCHEDULED) or between attempts (RETRY): it never starts.
-- A stream entry may remain; start.lua answers DONE for it and the worker only acks it.
redis.call('ZREM', ARGV[7] .. ':{q:' .. queue .. '}:delayed', ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'REVOKED', 'finished_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*',
           'kind', 'run', 'id', ARGV[1], 'state', 'REVOKED', 'task', task, 'queue', queue)
redis.call('PUBLISH', ARGV[5], 'REVOKED')
return {'REVOKED', state}
