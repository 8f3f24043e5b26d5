-- wrk script for bench/redirect.py: cycle GET over the paths in the file given
-- after `--`, count statuses, and print one JSON line so nobody parses wrk's text.

local paths = {}
local n, i = 0, 0
ok, other = 0, 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      n = n + 1
      paths[n] = line
    end
  end
  -- Threads start at different offsets so they do not hit the same code in step.
  i = (id or 0) * 97
end

-- BENCH_USER_AGENT and BENCH_ACCEPT_LANGUAGE, when set, go with every request
-- (bench.targeted: what its links' rules read).
local headers = {}
if os.getenv("BENCH_USER_AGENT") then headers["User-Agent"] = os.getenv("BENCH_USER_AGENT") end
if os.getenv("BENCH_ACCEPT_LANGUAGE") then
  headers["Accept-Language"] = os.getenv("BENCH_ACCEPT_LANGUAGE")
end

function request()
  i = i % n + 1
  return wrk.format("GET", paths[i], headers)
end

function response(status, headers, body)
  if status == 302 then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local redirects, others = 0, 0
  for _, thread in ipairs(threads) do
    redirects = redirects + thread:get("ok")
    others = others + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"redirects":%d,"non_302":%d,'
      .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,'
      .. '"status_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, redirects, others,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
