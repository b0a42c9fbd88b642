-- Move runs whose countdown/ETA is due from a queue's delayed zset to its streams.
-- Atomic, so any number of components may call it at once without duplicating a run.
-- KEYS: 1 delayed zset, 2 events stream
-- ARGV: 1 now ms, 2 limit, 3 key prefix, 4 queue, 5 events maxlen
-- Returns how many runs were moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  local run = ARGV[3] .. ':run:' .. id
  local env, body, state = unpack(redis.call('HMGET', run, 'env', 'body', 'state'))
  if env and state ~= 'REVOKED' then
    local priority = cjson.decode(env)['priority'] or 5
    local stream = ARGV[3] .. ':{q:' .. ARGV[4] .. '}:p' .. priority
    redis.call('XADD', stream, '*', 'env', env, 'body', body)
    redis.call('HSET', run, 'state', 'PENDING')
    local task = redis.call('HGET', run, 'task')
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
               'kind', 'run', 'id', id, 'state', 'PENDING', 'task', task, 'queue', ARGV[4])
  end
  redis.call('ZREM', KEYS[1], id)
end
return #due
