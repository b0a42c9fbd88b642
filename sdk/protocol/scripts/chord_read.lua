-- The results of a chord's header, in order, for its body about to run.
-- KEYS: 1 chord hash
-- ARGV: none
-- Returns {content type, '', r0, r1, ...}; {content type, error JSON} when a header run
-- did not succeed (the body is not run: it fails with that error); {} when there is no
-- such chord.
local CHUNK = 1000  -- fields per HMGET: unpack() has a stack limit near 8,000
local ct, size, error = unpack(redis.call('HMGET', KEYS[1], 'ct', 'size', 'error'))
if not size then
  return {}
end
if error then
  return {ct, error}
end
local reply = {ct, ''}
size = tonumber(size)
for first = 0, size - 1, CHUNK do
  local fields = {}
  for i = first, math.min(first + CHUNK, size) - 1 do
    fields[#fields + 1] = 'r' .. i
  end
  for _, value in ipairs(redis.call('HMGET', KEYS[1], unpack(fields))) do
    reply[#reply + 1] = value or ''
  end
end
return reply
