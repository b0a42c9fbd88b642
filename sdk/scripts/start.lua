-- A worker is about to execute a run it read from the stream.
-- KEYS: 1 run hash, 2 events stream, 3 revoked zset
-- ARGV: 1 run id, 2 worker id, 3 now ms, 4 events maxlen, 5 task, 6 queue, 7 created ms,
--       8 max deliveries (per attempt round; 0 = unlimited)
-- Returns {verdict, attempts, deliveries}:
--   STARTED  execute it;
--   REVOKE   revoked while queued: record REVOKED (finish) and skip;
--   DEAD     delivered more than max deliveries without finishing: dead-letter it;
--   KILLED   stopped over its hard time limit: record FAILURE with the error in 'killed';
--   DONE     already terminal (a duplicate delivery): acknowledge, change nothing.
-- Four commands on the common path: this runs once per run.
local state, killed, deliveries, attempts =
  unpack(redis.call('HMGET', KEYS[1], 'state', 'killed', 'deliveries', 'attempts'))
if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED'
   or state == 'EXPIRED' or state == 'DEAD' then
  return {'DONE', 0, 0}
end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
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
  fields = {'deliveries', deliveries, 'task', ARGV[5], 'queue', ARGV[6], 'created_at', ARGV[7]}
end
local max = tonumber(ARGV[8])
if max > 0 and deliveries > max then
  redis.call('HSET', KEYS[1], unpack(fields))
  return {'DEAD', attempts, deliveries - 1}
end
attempts = attempts + 1
redis.call('HSET', KEYS[1], 'state', 'STARTED', 'started_at', ARGV[3], 'worker', ARGV[2],
           'attempts', attempts, unpack(fields))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
           'kind', 'run', 'id', ARGV[1], 'state', 'STARTED', 'task', ARGV[5], 'queue', ARGV[6])
return {'STARTED', attempts, deliveries}
