-- Single submissions: POST /tasks/{name} with {"args": [1, 2]}, as fast as answered.
--   wrk -t1 -c32 -d10s -s loadtests/wrk/submit.lua http://127.0.0.1:8000 -- examples.add
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local report = require("report")

function init(args)
  local task = args[1] or "examples.add"
  req = wrk.format("POST", "/tasks/" .. task, {["Content-Type"] = "application/json"},
                   '{"args":[1,2]}')
  runs = 0
end

function request()
  return req
end

function response(status, headers, body)
  if status == 202 then
    runs = runs + 1
  end
end

setup = report.setup
done = report.done
