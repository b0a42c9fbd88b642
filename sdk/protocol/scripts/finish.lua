-- Store a run's outcome, then acknowledge it: the outcome is durable before the ack.
-- KEYS: 1 run hash, 2 stream the entry came from, 3 events stream, 4 dead-letter stream
-- ARGV: see the locals below; then the outcome's record fields as name/value pairs
-- A DEAD run is also appended, with its message, to the dead-letter stream.
-- A run already terminal is only acknowledged: an outcome is written once (a parent
-- killing a child over its time limit may race the child's own finish). Returns 1 when
-- the outcome was stored, 0 when it was already there.
local run_id, entry_id, group, state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local runtime, ttl, events_max, task, queue = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local done_channel = ARGV[11]
local OUTCOME = 12

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
for i = OUTCOME, #ARGV, 2 do
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
return 1
