-- A custom state (PROGRESS, or any from update_state) with its meta, shown on the run.
-- KEYS: 1 run hash, 2 events stream
-- ARGV: see the locals below
-- Returns 1 when set, 0 when the run is already terminal (nothing changes).
local run_id, state, meta, events_max, task, queue =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

if TERMINAL[redis.call('HGET', KEYS[1], 'state')] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', state, 'meta', meta)
run_event(KEYS[2], events_max, run_id, state, task, queue)
return 1
