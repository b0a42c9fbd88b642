-- Submit, then wait: each connection POSTs /tasks/{name}, then GET /runs/{id}?wait=5 for
-- that run, and again. Needs a worker running the task. `runs` counts finished runs seen.
--   wrk -t1 -c32 -d10s -s loadtests/wrk/longpoll.lua http://127.0.0.1:8000 -- examples.add
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local report = require("report")

local ids = {}

function init(args)
  local task = args[1] or "examples.add"
  post = wrk.format("POST", "/tasks/" .. task, {["Content-Type"] = "application/json"},
                    '{"args":[1,2]}')
  runs, waits = 0, 0
end

function request()
  local id = table.remove(ids)
  if id then
    waits = waits + 1
    return wrk.format("GET", "/runs/" .. id .. "?wait=5")
  end
  return post
end

function response(status, headers, body)
  if status == 202 then
    table.insert(ids, body:match('"id":"([^"]+)"'))
  elseif status == 200 and body:find('"state":"SUCCESS"', 1, true) then
    runs = runs + 1
  end
end

setup = report.setup
done = report.done
