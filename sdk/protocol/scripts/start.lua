-- A worker is about to execute a run it read from the stream.
-- KEYS: 1 run hash, 2 events stream, 3 revoked zset
-- ARGV: see the locals below
-- Returns {verdict, attempts, deliveries}:
--   STARTED  execute it;
--   REVOKE   revoked while it ran, and delivered again: record REVOKED (finish), skip;
--   DEAD     delivered more than max deliveries without finishing: dead-letter it;
--   KILLED   stopped over its hard time limit: record FAILURE with the error in 'killed'
--            (then a fourth element, the error);
--   DONE     already terminal (a duplicate delivery): acknowledge, change nothing.
-- Four commands on the common path: this runs once per run.
local run_id, worker, now, events_max = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local task, queue, created = ARGV[5], ARGV[6], ARGV[7]
local max_deliveries = tonumber(ARGV[8])  -- per attempt round; 0 = unlimited

local state, killed, deliveries, attempts =
  unpack(redis.call('HMGET', KEYS[1], 'state', 'killed', 'deliveries', 'attempts'))
if TERMINAL[state] then
  return {'DONE', 0, 0}
end
if redis.call('ZSCORE', KEYS[3], run_id) then
  return {'REVOKE', 0, 0}
end
if killed then
  return {'KILLED', 0, 0, killed}
end
-- deliveries counts this round (reset by a retry); attempts counts every execution
deliveries = tonumber(deliveries or 0) + 1
attempts = tonumber(attempts or 0)
local fields = {'deliveries', deliveries}
if not state then  -- queued by a producer that wrote no record: adopt it
  fields = {'deliveries', deliveries, 'task', task, 'queue', queue, 'created_at', created}
end
if max_deliveries > 0 and deliveries > max_deliveries then
  redis.call('HSET', KEYS[1], unpack(fields))
  return {'DEAD', attempts, deliveries - 1}
end
attempts = attempts + 1
redis.call('HSET', KEYS[1], 'state', 'STARTED', 'started_at', now, 'worker', worker,
           'attempts', attempts, unpack(fields))
run_event(KEYS[2], events_max, run_id, 'STARTED', task, queue)
return {'STARTED', attempts, deliveries}
