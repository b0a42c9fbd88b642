-- Put a dead-lettered run back on its queue, as a fresh round of deliveries.
-- KEYS: 1 run hash, 2 events stream
-- ARGV: 1 run id, 2 key prefix, 3 events maxlen
-- Returns {outcome, state}: MISSING (no such run), NOT_DEAD (its state is not DEAD:
-- nothing done), REQUEUED.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'MISSING', ''}
end
if state ~= 'DEAD' then
  return {'NOT_DEAD', state}
end
local env, body, letter, task, queue = unpack(redis.call('HMGET', KEYS[1], 'env', 'body',
                                                         'dead_entry', 'task', 'queue'))
local ok, decoded = pcall(cjson.decode, env or '')
local priority = (ok and decoded['priority']) or 5
local prefix = ARGV[2] .. ':{q:' .. queue .. '}'
redis.call('XADD', prefix .. ':p' .. priority, '*', 'env', env or '', 'body', body or '')
if letter then
  redis.call('XDEL', prefix .. ':dead', letter)
end
redis.call('HSET', KEYS[1], 'state', 'PENDING', 'deliveries', 0)
redis.call('HDEL', KEYS[1], 'error', 'exc', 'exc_sig', 'finished_at', 'runtime_ms', 'killed',
           'dead_entry')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
           'kind', 'run', 'id', ARGV[1], 'state', 'PENDING', 'task', task, 'queue', queue)
return {'REQUEUED', state}
