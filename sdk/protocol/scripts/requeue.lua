-- Put a dead-lettered run back on its queue, as a fresh round of deliveries.
-- KEYS: 1 run hash, 2 events stream, 3 the queue's dead-letter stream,
--       4-13 the queue's streams by priority (0 first)
-- ARGV: 1 run id, 2 events maxlen, 3 the queue the caller read from the record
-- Returns {outcome, state}: MISSING (no such run), NOT_DEAD (its state is not DEAD:
-- nothing done), REQUEUED.
local run_id, events_max, queue = ARGV[1], ARGV[2], ARGV[3]

local state, env, body, letter, task, recorded_queue = unpack(redis.call('HMGET', KEYS[1],
  'state', 'env', 'body', 'dead_entry', 'task', 'queue'))
if not state then
  return {'MISSING', ''}
end
if state ~= 'DEAD' or recorded_queue ~= queue then
  return {'NOT_DEAD', state}
end
redis.call('XADD', KEYS[4 + priority_of(env)], '*', 'env', env or '', 'body', body or '')
if letter then
  redis.call('XDEL', KEYS[3], letter)
end
redis.call('HSET', KEYS[1], 'state', 'PENDING', 'deliveries', 0)
redis.call('HDEL', KEYS[1], 'error', 'exc', 'exc_sig', 'finished_at', 'runtime_ms', 'killed',
           'dead_entry')
run_event(KEYS[2], events_max, run_id, 'PENDING', task, queue)
return {'REQUEUED', state}
