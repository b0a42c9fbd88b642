-- Shared by the wrk scenarios: counts per thread, one JSON summary line at the end.
-- A scenario counts into the thread globals `runs` (runs submitted or finished, as it
-- says) and `waits`; done() sums them over the threads and prints, after wrk's own report:
--   BENCH_JSON {"requests": ..., "runs": ..., "p50_us": ..., ...}
local M = {}
local threads = {}

function M.setup(thread)
  table.insert(threads, thread)
end

function M.done(summary, latency, requests)
  local runs, waits = 0, 0
  for _, t in ipairs(threads) do
    runs = runs + (t:get("runs") or 0)
    waits = waits + (t:get("waits") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "runs": %d, "waits": %d, '
      .. '"non2xx": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, runs, waits, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end

return M
