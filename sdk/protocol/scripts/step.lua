-- One worker round trip: store the last run's outcome (finish.lua), then start the next
-- run (start.lua) or read the next batch (fetch.lua). A slot thereby makes one call per
-- run, and the outcome is durable before anything else runs.
-- Composed with finish, start and fetch as local functions (sdk/protocol/lua.py).
-- KEYS: finish's keys (none when there is nothing to store), then the next part's keys
-- ARGV: see the locals below, then finish's args, then the next part's args
-- Returns {stored, reply}: stored as finish.lua returns it (-1 when nothing was stored),
-- reply as start.lua or fetch.lua returns it (empty when there is no next part).
local finish_keys, finish_args = tonumber(ARGV[1]), tonumber(ARGV[2])  -- counts
local next_part = ARGV[3]  -- "start", "fetch" or ""
local FIRST = 4

local stored = -1
if finish_keys > 0 then
  stored = finish({unpack(KEYS, 1, finish_keys)}, {unpack(ARGV, FIRST, FIRST - 1 + finish_args)})
end
local keys, args = {unpack(KEYS, finish_keys + 1)}, {unpack(ARGV, FIRST + finish_args)}
if next_part == 'start' then
  return {stored, start(keys, args)}
elseif next_part == 'fetch' then
  return {stored, fetch(keys, args)}
end
return {stored, {}}
