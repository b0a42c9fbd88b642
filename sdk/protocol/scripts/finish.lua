-- Store a run's outcome, then acknowledge it: the outcome is durable before the ack.
-- KEYS: 1 run hash, 2 stream the entry came from, 3 events stream, 4 dead-letter stream;
--       then 5 keys for each follow-up run (submit.lua's), then the record of each run
--       that fails with this one (all of the run's partition)
-- ARGV: see the locals below; then the outcome's record fields as name/value pairs;
--       then, optionally, the follow-ups: their count, and for each its submit.lua
--       arguments, preceded by their count; then, when runs fail with this one, the
--       state they get, the count of their record fields and the fields (name/value),
--       and for each its id, task, queue and done channel
-- A DEAD run is also appended, with its message, to the dead-letter stream.
-- Follow-ups (the next link of a chain, sdk/canvas.py) are submitted in this same call,
-- so no crash can store the outcome without them, or submit them twice: a redelivered
-- run finds its outcome stored and is only acknowledged. Runs that fail with this one
-- (the links of a chain after a link that did not succeed) are stored as ended too.
-- A run already terminal is only acknowledged: an outcome is written once (a parent
-- killing a child over its time limit may race the child's own finish). Returns 1 when
-- the outcome was stored, 0 when it was already there.
local run_id, entry_id, group, state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local runtime, ttl, events_max, task, queue = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local done_channel, outcome_size = ARGV[11], tonumber(ARGV[12])
local OUTCOME = 13
local AFTER = OUTCOME + outcome_size  -- the follow-ups, if any

local function ack()
  if entry_id ~= '' then
    redis.call('XACK', KEYS[2], group, entry_id)
    redis.call('XDEL', KEYS[2], entry_id)
  end
end

local current, stale = unpack(redis.call('HMGET', KEYS[1], 'state', 'error'))
if TERMINAL[current] then
  ack()
  return 0
end
local fields = {'state', state, 'finished_at', now}
if runtime ~= '' then
  fields[#fields + 1] = 'runtime_ms'
  fields[#fields + 1] = runtime
end
for i = OUTCOME, AFTER - 1, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
if state == 'SUCCESS' and stale then  -- a success after retries shows no stale error
  redis.call('HDEL', KEYS[1], 'error', 'exc', 'exc_sig')
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ttl)
if state == 'DEAD' then
  local env, body, err = unpack(redis.call('HMGET', KEYS[1], 'env', 'body', 'error'))
  local letter = redis.call('XADD', KEYS[4], 'MAXLEN', '~', DEAD_LETTERS_MAX, '*',
                            'id', run_id, 'env', env or '', 'body', body or '',
                            'error', err or '', 'at', now)
  redis.call('HSET', KEYS[1], 'dead_entry', letter)
  redis.call('PERSIST', KEYS[1])  -- kept until requeued or purged, like the letter itself
end
ack()
run_event(KEYS[3], events_max, run_id, state, task, queue)
redis.call('PUBLISH', done_channel, state)
if #ARGV < AFTER then
  return 1
end
local at, key = AFTER + 1, 5
for _ = 1, tonumber(ARGV[AFTER]) do
  local size = tonumber(ARGV[at])
  submit({unpack(KEYS, key, key + 4)}, {unpack(ARGV, at + 1, at + size)})
  at, key = at + 1 + size, key + 5
end
if at > #ARGV then
  return 1
end
local their_size = tonumber(ARGV[at + 1])
local theirs = {'state', ARGV[at], 'finished_at', now, unpack(ARGV, at + 2, at + 1 + their_size)}
at = at + 2 + their_size
while at <= #ARGV do
  local id, their_task, their_queue, channel = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  redis.call('HSET', KEYS[key], 'task', their_task, 'queue', their_queue, unpack(theirs))
  redis.call('EXPIRE', KEYS[key], ttl)
  run_event(KEYS[3], events_max, id, theirs[2], their_task, their_queue)
  redis.call('PUBLISH', channel, theirs[2])
  at, key = at + 4, key + 1
end
return 1
