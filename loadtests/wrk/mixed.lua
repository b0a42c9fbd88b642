-- A mixed profile: 70% single POST /tasks/{name}, 10% batches of 100, 20% long-polls
-- (GET /runs/{id}?wait=1) on runs this thread submitted recently. Needs a worker running
-- the task. `runs` counts runs submitted.
--   wrk -t1 -c32 -d10s -s loadtests/wrk/mixed.lua http://127.0.0.1:8000 -- examples.add
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local report = require("report")

local recent, next_slot = {}, 1
local RECENT = 1000

function init(args)
  local task = args[1] or "examples.add"
  local json = {["Content-Type"] = "application/json"}
  local items = {}
  for i = 1, 100 do
    items[i] = '{"args":[1,2]}'
  end
  post = wrk.format("POST", "/tasks/" .. task, json, '{"args":[1,2]}')
  batch = wrk.format("POST", "/tasks/" .. task .. "/batch", json,
                     '{"items":[' .. table.concat(items, ",") .. ']}')
  runs, waits = 0, 0
  math.randomseed(os.time())
end

function request()
  local roll = math.random()
  if roll < 0.2 and #recent > 0 then
    waits = waits + 1
    return wrk.format("GET", "/runs/" .. recent[math.random(#recent)] .. "?wait=1")
  elseif roll < 0.3 then
    return batch
  end
  return post
end

function response(status, headers, body)
  if status ~= 202 then
    return
  end
  local id = body:match('^{"id":"([^"]+)"')
  if id then
    runs = runs + 1
    recent[next_slot] = id
    next_slot = next_slot % RECENT + 1
  else
    local _, count = body:gsub('","', "")
    runs = runs + count + 1
  end
end

setup = report.setup
done = report.done
