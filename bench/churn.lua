-- wrk script for many distinct users: each request picks a random line of BENCH_USERS, a file
-- of `<Authorization header value>\t<path and query>` lines. BENCH_DELAY_MS: the mean pause before
-- each request of a connection (paced runs).
-- done() prints one line: RESULT requests=.. duration_us=.. p50_us=.. p99_us=.. p999_us=.. errors=..

local file = os.getenv("BENCH_USERS")
local requests = {}
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

function init(args)
   for line in io.lines(file) do
      local auth, path = line:match("^([^\t]*)\t(.*)$")
      if auth then
         table.insert(requests, wrk.format("GET", path, { ["Authorization"] = auth }))
      end
   end
   math.randomseed(os.time() + (id or 0))
end

function setup(thread)
   thread:set("id", math.random(1, 1000000))
end

function request()
   return requests[math.random(1, #requests)]
end

-- Paced runs: each pause is drawn from an exponential distribution of mean BENCH_DELAY_MS, so
-- that the connections' requests arrive as independent clients' do (a Poisson stream), not in
-- lockstep bursts of every connection at once.
if delay_ms > 0 then
   function delay()
      return math.floor(-math.log(1 - math.random()) * delay_ms + 0.5)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d errors=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency:percentile(99.9), errors))
end
