-- Write a static schedule definition unless the schedule was changed at runtime
-- (source "api") or belongs to another app.
-- KEYS: 1 schedules hash, 2 version counter
-- ARGV: see the locals below
-- Returns 1 if written, 0 if kept as it was.
local schedule_id, definition, app = ARGV[1], ARGV[2], ARGV[3]

local raw = redis.call('HGET', KEYS[1], schedule_id)
if raw then
  if raw == definition then return 0 end
  local old = cjson.decode(raw)
  if old.source ~= 'static' or old.app ~= app then return 0 end
end
redis.call('HSET', KEYS[1], schedule_id, definition)
redis.call('INCR', KEYS[2])
return 1
