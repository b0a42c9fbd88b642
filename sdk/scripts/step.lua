-- One worker round trip: store the last run's outcome (finish.lua), then start the next
-- run (start.lua) or read the next batch (fetch.lua). A slot thereby makes one call per
-- run, and the outcome is durable before anything else runs.
-- Composed with finish, start and fetch as local functions (sdk/scripts/__init__.py).
-- KEYS: finish's keys (none when there is nothing to store), then the next part's keys
-- ARGV: 1 finish key count (0 or 4), 2 finish arg count, 3 next part ("start", "fetch"
--       or ""), then finish's args, then the next part's args
-- Returns {stored, reply}: stored as finish.lua returns it (-1 when nothing was stored),
-- reply as start.lua or fetch.lua returns it (empty when there is no next part).
local nkeys, nargs, next_part = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local stored = -1
if nkeys > 0 then
  stored = finish({unpack(KEYS, 1, nkeys)}, {unpack(ARGV, 4, 3 + nargs)})
end
local keys, args = {unpack(KEYS, nkeys + 1)}, {unpack(ARGV, 4 + nargs)}
if next_part == 'start' then
  return {stored, start(keys, args)}
elseif next_part == 'fetch' then
  return {stored, fetch(keys, args)}
end
return {stored, {}}
