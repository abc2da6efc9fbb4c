-- wrk script for the churn scenario's background load, one kind per wrk run (BENCH_KIND):
--   push   first pushes: `push,pull` on a new repository BENCH_PREFIX-<run>-<n> (BENCH_AUTH)
--   login  `docker login`: the OAuth2 password grant with access_type=offline (BENCH_FORM)
--   admin  admin changes through the admin API (BENCH_ADMIN: Bearer token), in turn: a grant
--          added, the same grant removed, a member's role changed (BENCH_GRANT_HOLDER,
--          BENCH_GRANT_REPOSITORY, BENCH_MEMBER_PATH); run it with one connection
--   events the registry's notifications: BENCH_EVENTS_PER_ENVELOPE manifest pulls of
--          BENCH_EVENTS_REPOSITORY per envelope, each event id unique, POSTed to
--          /v1/registry/events with BENCH_EVENTS_SECRET
-- Each connection waits BENCH_DELAY_MS before each request: connections x 1000 / delay per s.
-- done() prints: BACKGROUND kind=.. requests=.. errors=..

local kind = os.getenv("BENCH_KIND")
local path = os.getenv("BENCH_PATH")
local auth = os.getenv("BENCH_AUTH") or ""
local prefix = os.getenv("BENCH_PREFIX") or ""
local form = os.getenv("BENCH_FORM") or ""
local admin = os.getenv("BENCH_ADMIN") or ""
local holder = os.getenv("BENCH_GRANT_HOLDER") or ""
local repository = os.getenv("BENCH_GRANT_REPOSITORY") or ""
local member_path = os.getenv("BENCH_MEMBER_PATH") or ""
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "1000")
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local events_secret = os.getenv("BENCH_EVENTS_SECRET") or ""
local events_repository = os.getenv("BENCH_EVENTS_REPOSITORY") or ""
local digest = "sha256:" .. string.rep("ab", 32)
local per_envelope = tonumber(os.getenv("BENCH_EVENTS_PER_ENVELOPE") or "1")

local counter = 0
-- The admin changes advance with each answer: wrk builds one request per connection before the
-- run that it never sends, so counting requests would start the cycle at its second step.
local step = 0

function setup(thread)
   thread:set("id", math.random(1, 1000000))
end

function request()
   counter = counter + 1
   if kind == "push" then
      local scope = string.format("&scope=repository:%s-%s-%d-%d:push,pull", prefix, run, id, counter)
      return wrk.format("GET", path .. scope, { ["Authorization"] = auth })
   elseif kind == "events" then
      local events = {}
      local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
      for i = 1, per_envelope do
         events[i] = string.format(
            '{"id": "%s-%d-%d-%d", "timestamp": "%s", "action": "pull", '
               .. '"target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", '
               .. '"size": 528, "digest": "%s", "repository": "%s", "tag": "latest"}, '
               .. '"actor": {"name": "u00001"}, "request": {"addr": "10.0.0.1:5000"}}',
            run, id, counter, i, now, digest, events_repository)
      end
      return wrk.format("POST", "/v1/registry/events", {
         ["Authorization"] = "Bearer " .. events_secret,
         ["Content-Type"] = "application/vnd.docker.distribution.events.v1+json",
      }, '{"events": [' .. table.concat(events, ", ") .. ']}')
   elseif kind == "login" then
      return wrk.format("POST", path,
         { ["Content-Type"] = "application/x-www-form-urlencoded" }, form)
   end
   local headers = { ["Authorization"] = "Bearer " .. admin, ["Content-Type"] = "application/json" }
   if step % 3 == 0 then
      local body = string.format('{"holder": "%s", "repository": "%s", "actions": ["pull"]}',
         holder, repository)
      return wrk.format("POST", "/v1/admin/grants", headers, body)
   elseif step % 3 == 1 then
      return wrk.format("DELETE", string.format("/v1/admin/grants?holder=%s&repository=%s",
         holder, repository), headers)
   end
   local role = (step % 2 == 0) and "maintainer" or "developer"
   return wrk.format("PUT", member_path, headers, string.format('{"role": "%s"}', role))
end

function response(status, headers, body)
   step = step + 1
end

function delay()
   return delay_ms
end

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   io.write(string.format("BACKGROUND kind=%s requests=%d errors=%d\n", kind, summary.requests, errors))
end
