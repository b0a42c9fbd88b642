-- Schedule another attempt of a run that asked to be retried; it keeps its id.
-- KEYS: 1 run hash, 2 stream the entry came from, 3 events stream, 4 the queue's delayed zset
-- ARGV: see the locals below
-- Returns 1, or 0 when the run is already terminal (a duplicate delivery finished it
-- meanwhile): then the entry is only acknowledged.
local run_id, entry_id, group, due, env = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local events_max, task, queue, err, now = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local body = ARGV[11]  -- kept with the envelope: a run adopted without a record had none

if TERMINAL[redis.call('HGET', KEYS[1], 'state')] then
  redis.call('XACK', KEYS[2], group, entry_id)
  redis.call('XDEL', KEYS[2], entry_id)
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'RETRY', 'env', env, 'body', body,
           'error', err, 'deliveries', 0, 'finished_at', now)
redis.call('ZADD', KEYS[4], due, run_id)
redis.call('XACK', KEYS[2], group, entry_id)
redis.call('XDEL', KEYS[2], entry_id)
run_event(KEYS[3], events_max, run_id, 'RETRY', task, queue)
return 1
