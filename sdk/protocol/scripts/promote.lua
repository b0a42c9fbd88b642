-- Move runs whose countdown/ETA is due from a queue's delayed zset to its streams.
-- Atomic per run, so any number of components may call it at once without duplicating
-- one: an id is moved only while it is still in the zset and due.
-- KEYS: 1 delayed zset, 2 events stream, 3-12 the queue's streams by priority (0 first),
--       then the run hash of each id in ARGV (all of one partition)
-- ARGV: 1 now ms, 2 events maxlen, 3 queue, then the due ids (read by the caller)
-- Returns how many runs were moved.
local now, events_max, queue = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local FIRST_ID, FIRST_RUN = 4, 13

local moved = 0
for i = FIRST_ID, #ARGV do
  local run_id, run = ARGV[i], KEYS[FIRST_RUN + i - FIRST_ID]
  local due = redis.call('ZSCORE', KEYS[1], run_id)
  if due and tonumber(due) <= now then
    local env, body, state, task = unpack(redis.call('HMGET', run, 'env', 'body', 'state', 'task'))
    -- A record that expired, lost its message or is terminal (revoked, or finished by
    -- a duplicate delivery) is not queued: it is dropped from the set rather than fail
    -- every later call for this queue.
    if env and not TERMINAL[state] then
      redis.call('XADD', KEYS[3 + priority_of(env)], '*', 'env', env, 'body', body or '')
      redis.call('HSET', run, 'state', 'PENDING')
      run_event(KEYS[2], events_max, run_id, 'PENDING', task or '', queue)
      moved = moved + 1
    end
    redis.call('ZREM', KEYS[1], run_id)
  end
end
return moved
