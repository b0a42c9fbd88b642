-- Record a run of a schedule in its state, if the schedule still exists; a scheduled fire
-- never moves last_fire backwards (a late, deduped fire of a deposed leader changes nothing).
-- KEYS: 1 schedules hash, 2 schedule state hash
-- ARGV: see the locals below
-- Returns 1 when recorded, 0 when not.
local schedule_id, run_id, queued_at = ARGV[1], ARGV[2], tonumber(ARGV[3])
local fire = ARGV[4]  -- the fire time (ms), or "" for a manual run
local recent_max = tonumber(ARGV[5])  -- how many recent run ids to keep

if redis.call('HEXISTS', KEYS[1], schedule_id) == 0 then return 0 end
local raw = redis.call('HGET', KEYS[2], schedule_id)
local state = raw and cjson.decode(raw) or {}
if fire ~= '' then
  fire = tonumber(fire)
  if type(state.last_fire) == 'number' and state.last_fire >= fire then return 0 end
  state.last_fire = fire
  local recent = state.recent or {}
  table.insert(recent, 1, run_id)
  while #recent > recent_max do table.remove(recent) end
  state.recent = recent
end
state.last_run_at = queued_at
state.last_run_id = run_id
redis.call('HSET', KEYS[2], schedule_id, cjson.encode(state))
return 1
