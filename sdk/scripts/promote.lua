-- Move runs whose countdown/ETA is due from a queue's delayed zset to its streams.
-- Atomic, so any number of components may call it at once without duplicating a run.
-- KEYS: 1 delayed zset, 2 events stream
-- ARGV: 1 now ms, 2 limit, 3 key prefix, 4 queue, 5 events maxlen
-- Returns how many runs were moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  local run = ARGV[3] .. ':run:' .. id
  local env, body, state, task = unpack(redis.call('HMGET', run, 'env', 'body', 'state', 'task'))
  -- A record that expired or lost its message cannot be queued: drop it from the set
  -- rather than fail every later call for this queue.
  if env and state ~= 'REVOKED' then
    local ok, decoded = pcall(cjson.decode, env)
    local priority = (ok and decoded['priority']) or 5
    local stream = ARGV[3] .. ':{q:' .. ARGV[4] .. '}:p' .. priority
    redis.call('XADD', stream, '*', 'env', env, 'body', body or '')
    redis.call('HSET', run, 'state', 'PENDING')
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
               'kind', 'run', 'id', id, 'state', 'PENDING', 'task', task or '', 'queue', ARGV[4])
  end
  redis.call('ZREM', KEYS[1], id)
end
return #due
