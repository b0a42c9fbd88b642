-- Store a run's outcome, then acknowledge it: the outcome is durable before the ack.
-- KEYS: 1 run hash, 2 stream the entry came from, 3 events stream, 4 dead-letter stream;
--       then the keys of the follow-up sections, in their order (all of the run's
--       partition)
-- ARGV: see the locals below; then the outcome's record fields as name/value pairs;
--       then, optionally, follow-up sections, each a tag and its arguments:
--       'submit', n, submit.lua's n ARGV      KEYS: submit.lua's 5
--       'end', state, n, n field args, count, count x (id, task, queue, done channel)
--                                              KEYS: the record of each run it ends
--       'open', chord_open.lua's 8 ARGV         KEYS: the chord hash
--       'chord', index, history size, error   KEYS: the chord hash, then the body's
--                                              5 submit.lua keys
-- A DEAD run is also appended, with its message, to the dead-letter stream.
-- Follow-ups happen in this same call, so no crash can store the outcome without them,
-- or do them twice (a redelivered run finds its outcome stored and is only acked):
-- 'submit' queues a run (the next link of a chain, sdk/canvas.py); 'end' stores runs as
-- ended with this one (the later links after a link that did not succeed); 'open' opens
-- a chord (a group in a chain), whose header the 'submit' sections after it queue;
-- 'chord' counts a chord header member: its result goes into the chord hash, and the
-- last one queues the body; the first failure ('error' given) queues the body at once
-- instead, and its worker stores the chord's failure (chord_read.lua answers 'error').
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
local at, key = AFTER, 5
while at <= #ARGV do
  local tag = ARGV[at]
  if tag == 'submit' then
    local size = tonumber(ARGV[at + 1])
    submit({unpack(KEYS, key, key + 4)}, {unpack(ARGV, at + 2, at + 1 + size)})
    at, key = at + 2 + size, key + 5
  elseif tag == 'end' then
    local their_size = tonumber(ARGV[at + 2])
    local theirs = {'state', ARGV[at + 1], 'finished_at', now,
                    unpack(ARGV, at + 3, at + 2 + their_size)}
    local count = tonumber(ARGV[at + 3 + their_size])
    at = at + 4 + their_size
    for _ = 1, count do
      local id, their_task, their_queue, channel = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
      redis.call('HSET', KEYS[key], 'task', their_task, 'queue', their_queue, unpack(theirs))
      redis.call('EXPIRE', KEYS[key], ttl)
      run_event(KEYS[3], events_max, id, theirs[2], their_task, their_queue)
      redis.call('PUBLISH', channel, theirs[2])
      at, key = at + 4, key + 1
    end
  elseif tag == 'open' then
    chord_open({KEYS[key]}, {unpack(ARGV, at + 1, at + 8)})
    at, key = at + 9, key + 1
  elseif tag == 'chord' then
    local index, history_size, error = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    local chord, body_keys = KEYS[key], {unpack(KEYS, key + 1, key + 5)}
    at, key = at + 4, key + 6
    local queue_body = false
    if error == '' then
      local result = ''  -- ignore_result: the body gets None in its place
      for i = OUTCOME, AFTER - 1, 2 do
        if ARGV[i] == 'result' then
          result = ARGV[i + 1]
        end
      end
      redis.call('HSET', chord, 'r' .. index, result)
    elseif redis.call('HSETNX', chord, 'failed', run_id) == 1 then
      redis.call('HSET', chord, 'error', error)
      queue_body = true  -- at once: its worker stores the chord's failure, and its errbacks run
    end
    if redis.call('HINCRBY', chord, 'left', -1) == 0 and redis.call('HEXISTS', chord, 'failed') == 0 then
      queue_body = true
    end
    if queue_body then
      local body_id, env, body, body_queue, body_task =
        unpack(redis.call('HMGET', chord, 'id', 'env', 'body', 'queue', 'task'))
      submit(body_keys, {'stream', 0, body_id, env, body, now, history_size, events_max,
                         body_queue, body_task, 'PENDING'})
      redis.call('EXPIRE', chord, ttl)
    end
  else
    return redis.error_reply('finish: unknown follow-up section ' .. tostring(tag))
  end
end
return 1
