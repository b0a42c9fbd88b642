-- Batches: POST /tasks/{name}/batch with SIZE items (default 100) of {"args": [1, 2]}.
--   wrk -t1 -c32 -d10s -s loadtests/wrk/batch.lua http://127.0.0.1:8000 -- examples.add 100
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local report = require("report")

function init(args)
  local task = args[1] or "examples.add"
  size = tonumber(args[2] or "100")
  local items = {}
  for i = 1, size do
    items[i] = '{"args":[1,2]}'
  end
  req = wrk.format("POST", "/tasks/" .. task .. "/batch",
                   {["Content-Type"] = "application/json"},
                   '{"items":[' .. table.concat(items, ",") .. ']}')
  runs = 0
end

function request()
  return req
end

function response(status, headers, body)
  if status == 202 then
    runs = runs + size
  end
end

setup = report.setup
done = report.done
