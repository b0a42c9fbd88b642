-- Read up to COUNT new runs, highest priority first, in one round trip.
-- KEYS: the streams of the consumer's queues in one partition, by priority (highest
--       first) then queue
-- ARGV: see the locals below
-- Returns {{stream, entry id, {field, value, ...}}, ...}; empty when nothing is queued.
local group, consumer, left = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- "1": first one run from every non-empty stream, lowest priority first, so a backlog of
-- urgent runs never starves the rest
local fair = ARGV[4] == '1'

local out = {}
local function take(i, n)
  local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', n,
                           'STREAMS', KEYS[i], '>')
  if reply then
    for _, entry in ipairs(reply[1][2]) do
      out[#out + 1] = {KEYS[i], entry[1], entry[2]}
      left = left - 1
    end
  end
end
if fair then
  for i = #KEYS, 1, -1 do
    if left > 0 then take(i, 1) end
  end
end
for i = 1, #KEYS do
  if left <= 0 then break end
  take(i, left)
end
return out
