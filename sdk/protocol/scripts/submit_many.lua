-- Submit many runs of one partition in one call: submit.lua once per run, each as if
-- called alone. Composed with submit as a local function (sdk/protocol/lua.py).
-- KEYS: submit.lua's 5 keys for each run in turn
-- ARGV: for each run, its number of arguments, then submit.lua's arguments
-- Returns {created, ...}: submit.lua's reply for each run, in order.
local out, a = {}, 1
for k = 1, #KEYS, 5 do
  local n = tonumber(ARGV[a])
  out[#out + 1] = submit({unpack(KEYS, k, k + 4)}, {unpack(ARGV, a + 1, a + n)})
  a = a + n + 1
end
return out
