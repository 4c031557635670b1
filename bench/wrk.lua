-- bench.proxy's wrk script: absolute-form requests to a proxy, a new path per request (see
-- bench/proxy_traffic.py), and one BENCH-RESULT line of JSON at the end. Argument: the first path number.
wrk.headers["Host"] = "bench.test"
local n = 0
init = function(args) n = tonumber(args[1]) end
request = function()
  n = n + 1
  return wrk.format("GET", "http://bench.test/p" .. n)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d, "bad_status": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout, e.status))
end
