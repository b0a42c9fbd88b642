-- Submit one run under an idempotency key: the check and the submission in one script.
-- Composed with submit as a local function (sdk/protocol/lua.py).
-- KEYS: 1-5 as submit.lua, 6 the idempotency key (the run's partition)
-- ARGV: as submit.lua, then two more: the answer to remember (JSON), its ttl (s)
-- Returns {1} when the run was created (and the key now names it),
--         {0, remembered answer} when the key was already used (nothing changes),
--         {0} when the run id already existed.
local ttl = table.remove(ARGV)
local answer = table.remove(ARGV)
local found = redis.call('GET', KEYS[6])
if found then
  return {0, found}
end
local created = submit(KEYS, ARGV)
if created == 1 then
  redis.call('SET', KEYS[6], answer, 'EX', ttl)
end
return {created}
