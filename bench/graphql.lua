-- wrk script for the Chattergram benchmarks: authenticated GraphQL POSTs, one user per request.
--
--   wrk -t2 -c1000 -d60s --timeout 2s --latency -s bench/graphql.lua -- \
--       tokens=<file> threads=2 conns=500 mode=send [cap=10] [ramp_ms=5000]
--
-- tokens file: one line per user, "<token> <partner id> <user id>". Thread t owns the users
-- whose line number is t modulo `threads`; its requests go round-robin over them, so with
-- `cap=N` each user sends exactly N requests and the thread stops itself when it has all of
-- their answers (wrk cannot tie a request to a connection: connections are anonymous
-- keep-alive carriers, the user is in each request's Authorization header).
-- `ramp_ms` spreads the first request of the thread's `conns` connections over that time
-- (JMeter's ramp-up). Modes: `send` (sendMessage), `history` (a 50-message page).
-- done() prints one line "WRKJSON {...}" with the counters, the latency percentiles (µs),
-- the first send and last answer times (µs, wall clock) and the answers per 100 ms of wall clock.
-- wrk's main thread sleeps for the whole -d duration even when every thread stopped, so a
-- thread that reached its cap also creates the file "<done_file>.<thread id>": the caller
-- interrupts wrk (SIGINT, which makes it report at once) when all of them exist.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } cg_timespec;
int clock_gettime(int clk_id, cg_timespec *tp);
]]
local timespec = ffi.new("cg_timespec")

-- Wall-clock microseconds (CLOCK_REALTIME, comparable with Python's time.time()).
local function now_us()
  ffi.C.clock_gettime(0, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local SEND = '{"operationName":"Send","query":"mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id sentAt } }",'
  .. '"variables":{"input":{"receiverId":"%s","text":"bench message %d from wrk"}}}'
local HISTORY = '{"operationName":"History","query":"query History($partnerId: ID!, $last: Int) { history(partnerId: $partnerId, last: $last) '
  .. '{ edges { cursor node { id text senderId receiverId sentAt } } pageInfo { hasPreviousPage startCursor } } }",'
  .. '"variables":{"partnerId":"%s","last":50}}'

function init(args)
  local opts = {}
  for _, a in ipairs(args) do
    local k, v = a:match("^([^=]+)=(.*)$")
    if k then opts[k] = v end
  end
  mode = opts.mode or "send"
  local nthreads = tonumber(opts.threads or "1")
  local cap = tonumber(opts.cap or "0")
  ramp_ms = tonumber(opts.ramp_ms or "0")
  conns = tonumber(opts.conns or "1")
  path = opts.path or "/graphql"
  users = {}
  local i = 0
  for line in io.lines(opts.tokens) do
    if i % nthreads == tid then
      local token, partner = line:match("^(%S+)%s+(%S+)")
      users[#users + 1] = { auth = "Bearer " .. token, partner = partner }
    end
    i = i + 1
  end
  limit = cap * #users -- 0 = unlimited (duration run)
  reserved, issued, received, ok, gql_errors, delayed_calls = 0, 0, 0, 0, 0, 0
  per_slot = {} -- answers per 100 ms of wall clock
  sample_error = ""
  done_file = opts.done_file
  first_send_us, last_answer_us = 0, 0
end

-- delay() gates every request: the ramp-up of the first requests, then the per-user cap
-- (a connection past the cap idles for an hour; the thread stops long before).
function delay()
  delayed_calls = delayed_calls + 1
  if limit > 0 and reserved >= limit then
    return 3600000
  end
  reserved = reserved + 1
  if delayed_calls <= conns and ramp_ms > 0 then
    return math.floor((delayed_calls - 1) * ramp_ms / conns)
  end
  return 0
end

function request()
  local user = users[(issued % #users) + 1]
  issued = issued + 1
  if first_send_us == 0 then first_send_us = now_us() end
  local body
  if mode == "history" then
    body = string.format(HISTORY, user.partner)
  else
    body = string.format(SEND, user.partner, issued)
  end
  return wrk.format("POST", path, { ["Content-Type"] = "application/json", ["Authorization"] = user.auth }, body)
end

function response(status, headers, body)
  received = received + 1
  if status == 200 and not string.find(body, '"errors"', 1, true) then
    ok = ok + 1
  else
    gql_errors = gql_errors + 1
    if sample_error == "" then sample_error = status .. " " .. string.sub(body, 1, 400) end
  end
  last_answer_us = now_us()
  local s = math.floor(last_answer_us / 100000)
  per_slot[s] = (per_slot[s] or 0) + 1
  if limit > 0 and received == limit then
    if done_file then
      local f = io.open(done_file .. "." .. tid, "w")
      if f then f:write("done\n"); f:close() end
    end
    wrk.thread:stop()
  end
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local t = { issued = 0, received = 0, ok = 0, graphql_errors = 0, limit = 0, first_send_us = 0, last_answer_us = 0 }
  local seconds = {}
  local samples = {}
  for _, thread in ipairs(threads) do
    t.issued = t.issued + thread:get("issued")
    t.received = t.received + thread:get("received")
    t.ok = t.ok + thread:get("ok")
    t.graphql_errors = t.graphql_errors + thread:get("gql_errors")
    t.limit = t.limit + thread:get("limit")
    local f, l = thread:get("first_send_us"), thread:get("last_answer_us")
    if f > 0 and (t.first_send_us == 0 or f < t.first_send_us) then t.first_send_us = f end
    if l > t.last_answer_us then t.last_answer_us = l end
    for s, n in pairs(thread:get("per_slot")) do seconds[s] = (seconds[s] or 0) + n end
    local e = thread:get("sample_error")
    if e ~= "" then table.insert(samples, e) end
  end
  local parts = {}
  for k, v in pairs(t) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  table.insert(parts, string.format('"duration_us":%d,"requests":%d,"bytes":%d', summary.duration, summary.requests, summary.bytes))
  table.insert(parts, string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
    e.connect, e.read, e.write, e.status, e.timeout))
  table.insert(parts, string.format('"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f}',
    latency.min, latency.max, latency.mean, latency.stdev))
  local pts = {}
  local p = 0.5
  while p <= 100.0001 do
    local v = p >= 100 and latency.max or latency:percentile(p)
    table.insert(pts, string.format('[%.2f,%d]', p, v))
    p = p + 0.5
  end
  for _, q in ipairs({ 90.0, 95.0, 99.0, 99.5, 99.9, 99.99 }) do
    table.insert(pts, string.format('[%.2f,%d]', q, latency:percentile(q)))
  end
  table.insert(parts, '"percentiles_us":[' .. table.concat(pts, ",") .. ']')
  local secs = {}
  for s, n in pairs(seconds) do table.insert(secs, string.format('[%d,%d]', s, n)) end
  table.insert(parts, '"per_100ms":[' .. table.concat(secs, ",") .. ']')
  local es = {}
  for _, s in ipairs(samples) do table.insert(es, json_string(s)) end
  table.insert(parts, '"error_samples":[' .. table.concat(es, ",") .. ']')
  io.write("WRKJSON {" .. table.concat(parts, ",") .. "}\n")
end
