-- wrk script for the token endpoint. Settings come from the environment:
--   BENCH_PATH        path and query of the request (required)
--   BENCH_AUTH        Authorization header value (none when empty)
--   BENCH_NEW_SHARE   share of requests (0..1) that add a push scope on a new repository
--   BENCH_NEW_PREFIX  those repositories' prefix (e.g. o0001/new)
--   BENCH_DELAY_MS    mean pause before each request of a connection (paced runs)
-- done() prints one line: RESULT requests=.. duration_us=.. p50_us=.. p99_us=.. p999_us=.. errors=..

local path = os.getenv("BENCH_PATH")
local auth = os.getenv("BENCH_AUTH") or ""
local share = tonumber(os.getenv("BENCH_NEW_SHARE") or "0")
local prefix = os.getenv("BENCH_NEW_PREFIX") or ""
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local run = os.getenv("BENCH_RUN") or tostring(os.time())

local threads = {}
local next_id = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("id", next_id)
   table.insert(threads, thread)
end

local headers = {}
local prepared
local counter = 0

function init(args)
   if auth ~= "" then
      headers["Authorization"] = auth
   end
   prepared = wrk.format("GET", path, headers)
   math.randomseed(os.time() + (id or 0))
end

function request()
   if share > 0 and math.random() < share then
      counter = counter + 1
      local scope = string.format("&scope=repository:%s-%s-%d-%d:push,pull", prefix, run, id, counter)
      return wrk.format("GET", path .. scope, headers)
   end
   return prepared
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
