-- Schedule another attempt of a run that asked to be retried; it keeps its id.
-- KEYS: 1 run hash, 2 stream the entry came from, 3 events stream, 4 the queue's delayed zset
-- ARGV: 1 run id, 2 entry id, 3 group, 4 due ms, 5 new envelope (retries + 1),
--       6 events maxlen, 7 task, 8 queue, 9 error JSON of the failed attempt, 10 now ms,
--       11 body (kept with the envelope: a run adopted without a record had none)
redis.call('HSET', KEYS[1], 'state', 'RETRY', 'env', ARGV[5], 'body', ARGV[11],
           'error', ARGV[9], 'deliveries', 0, 'finished_at', ARGV[10])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
           'kind', 'run', 'id', ARGV[1], 'state', 'RETRY', 'task', ARGV[7], 'queue', ARGV[8])
return 1
