-- Revoke a run: a queued or delayed one never starts; a running one may be terminated.
-- KEYS: 1 run hash, 2 revoked zset, 3 events stream, 4 the queue's delayed zset, then
--       the keys of the finish call that ends it, if it has follow-ups
-- ARGV: see the locals below (the two channels are PUBLISHed to, not keys); then that
--       finish call's key and argument counts and its arguments (0, 0: none). A queued
--       run with follow-ups (the later links of its chain, the chord it counts in, its
--       errbacks) never finishes by itself, so this script ends it with them: the
--       finish call stores it REVOKED and does what that brings about (finish.lua).
-- Returns {outcome, state}: MISSING (no such run), FINISHED (already terminal, nothing
-- done), REVOKED (it will never start), RUNNING (marked; it runs on unless terminate),
-- TERMINATING (the worker running it was told to stop it).
local run_id, now, keep_until, events_max = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local done_channel, terminate, ttl, control = ARGV[5], ARGV[6] == '1', ARGV[7], ARGV[8]
local queue = ARGV[9]  -- the queue the caller read from the record

local finish_keys, finish_args = tonumber(ARGV[10] or 0), tonumber(ARGV[11] or 0)

local state = redis.call('HGET', KEYS[1], 'state')
if TERMINAL[state] then
  return {'FINISHED', state}
end
-- marked even when unknown: a later link of a chain, not submitted yet, never starts
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], keep_until, run_id)
if not state then
  return {'MISSING', ''}
end
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
if finish_keys > 0 then
  finish({unpack(KEYS, 5, 4 + finish_keys)}, {unpack(ARGV, 12, 11 + finish_args)})
  return {'REVOKED', state}
end
redis.call('HSET', KEYS[1], 'state', 'REVOKED', 'finished_at', now)
redis.call('EXPIRE', KEYS[1], ttl)
run_event(KEYS[3], events_max, run_id, 'REVOKED', task, recorded_queue)
redis.call('PUBLISH', done_channel, 'REVOKED')
return {'REVOKED', state}
