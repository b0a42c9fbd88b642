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
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED'
   or state == 'EXPIRED' or state == 'DEAD' then
  return {'DONE', 0, 0}
end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return {'REVOKE', 0, 0}
end
local killed = redis.call('HGET', KEYS[1], 'killed')
if killed then
  return {'KILLED', 0, 0, killed}
end
if not state then  -- queued by a producer that wrote no record: adopt it
  redis.call('HSET', KEYS[1], 'task', ARGV[5], 'queue', ARGV[6], 'created_at', ARGV[7])
end
-- deliveries counts this round (reset by a retry); attempts counts every execution
local deliveries = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
local max = tonumber(ARGV[8])
if max > 0 and deliveries > max then
  return {'DEAD', tonumber(redis.call('HGET', KEYS[1], 'attempts') or 0), deliveries - 1}
end
redis.call('HSET', KEYS[1], 'state', 'STARTED', 'started_at', ARGV[3], 'worker', ARGV[2])
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
           'kind', 'run', 'id', ARGV[1], 'state', 'STARTED', 'task', ARGV[5], 'queue', ARGV[6])
return {'STARTED', attempts, deliveries}
