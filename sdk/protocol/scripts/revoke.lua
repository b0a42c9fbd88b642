-- Revoke a run: a queued or delayed one never starts; a running one may be terminated.
-- KEYS: 1 run hash, 2 revoked zset, 3 events stream, 4 the queue's delayed zset, then
--       the record of each later link of its chain
-- ARGV: see the locals below (the two channels are PUBLISHed to, not keys); then, for
--       each later link: id, task, queue, done channel (ended REVOKED with a queued run,
--       which will never finish and so never end them itself)
-- Returns {outcome, state}: MISSING (no such run), FINISHED (already terminal, nothing
-- done), REVOKED (it will never start), RUNNING (marked; it runs on unless terminate),
-- TERMINATING (the worker running it was told to stop it).
local run_id, now, keep_until, events_max = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local done_channel, terminate, ttl, control = ARGV[5], ARGV[6] == '1', ARGV[7], ARGV[8]
local queue = ARGV[9]  -- the queue the caller read from the record

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'MISSING', ''}
end
if TERMINAL[state] then
  return {'FINISHED', state}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], keep_until, run_id)
local task, recorded_queue = unpack(redis.call('HMGET', KEYS[1], 'task', 'queue'))
-- Anything but queued, delayed or between attempts is running (STARTED, PROGRESS, or a
-- custom state from update_state).
if state ~= 'PENDING' and state ~= 'SCHEDULED' and state ~= 'RETRY' then
  if terminate then
    redis.call('PUBLISH', control, cjson.encode({op = 'terminate', run = run_id}))
    return {'TERMINATING', state}
  end
  return {'RUNNING', state}
end
-- Queued (PENDING), delayed (SCHEDULED) or between attempts (RETRY): it never starts.
-- A stream entry may remain: start.lua answers DONE for it.
if recorded_queue == queue then
  redis.call('ZREM', KEYS[4], run_id)
end
redis.call('HSET', KEYS[1], 'state', 'REVOKED', 'finished_at', now)
redis.call('EXPIRE', KEYS[1], ttl)
run_event(KEYS[3], events_max, run_id, 'REVOKED', task, recorded_queue)
redis.call('PUBLISH', done_channel, 'REVOKED')
local key = 5
for at = 10, #ARGV, 4 do
  local id, link_task, link_queue, channel = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  redis.call('HSET', KEYS[key], 'task', link_task, 'queue', link_queue,
             'state', 'REVOKED', 'finished_at', now)
  redis.call('EXPIRE', KEYS[key], ttl)
  run_event(KEYS[3], events_max, id, 'REVOKED', link_task, link_queue)
  redis.call('PUBLISH', channel, 'REVOKED')
  key = key + 1
end
return {'REVOKED', state}
