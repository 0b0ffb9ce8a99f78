-- wrk script for PosterBench (bench/load.py --tool wrk runs it): the requests a browser sends, from one session.
-- Environment:
--   WRK_KIND      upload | sample | feedback | bandit
--   WRK_COOKIE    the session's Cookie header; WRK_TOKEN its CSRF token
--   WRK_POSTERS   upload: files of posters to send, one path per line in this file
--   WRK_SAMPLES   sample: catalog ids to click, one per line in this file
--   WRK_VOTES     feedback: the vote addresses of unrated recommendations (/results/ID/feedback?key=KEY), one per
--                 line in this file (each voted on once)
--   WRK_REQUESTS  the most requests each thread sends (then it stops): the run is bounded in count and time
--   WRK_OUT       where done() writes its figures as JSON
--   WRK_STOPPED   where a thread that has sent its WRK_REQUESTS leaves a file (this path, then its number): once
--                 every thread has, bench/load.py interrupts wrk's wait for the rest of --duration
-- Succeeded means the status a browser expects: 303 for the POSTs (a redirect to the results), 200 for the page.

local ffi = require("ffi")  -- wrk runs LuaJIT: a monotonic clock, to time the run up to its last answer
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } posterbench_timespec;
  int clock_gettime(int clock, posterbench_timespec *now);
]]
local function now_seconds()
  local now = ffi.new("posterbench_timespec")
  ffi.C.clock_gettime(1, now)  -- CLOCK_MONOTONIC
  return tonumber(now.tv_sec) + tonumber(now.tv_nsec) / 1e9
end

local kind = os.getenv("WRK_KIND")
local limit = tonumber(os.getenv("WRK_REQUESTS") or "0")
local threads = {}
local counter = 0

local function lines(path)
  local found = {}
  for line in io.lines(path) do
    if line ~= "" then found[#found + 1] = line end
  end
  return found
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  return data
end

local started = nil

function setup(thread)
  started = started or now_seconds()
  thread:set("number", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

-- Globals of each thread's own Lua state (done() reads them through thread:get).
requests_made, unexpected, last_answer = 0, 0, 0
local prepared, next_one = {}, 1

function init(_args)
  local base = {Cookie = os.getenv("WRK_COOKIE")}
  local token = os.getenv("WRK_TOKEN")
  if kind == "bandit" then
    prepared[1] = wrk.format("GET", "/bandit", base)
  elseif kind == "sample" then
    for _, imdb_id in ipairs(lines(os.getenv("WRK_SAMPLES"))) do
      local headers = {Cookie = base.Cookie, ["Content-Type"] = "application/x-www-form-urlencoded"}
      prepared[#prepared + 1] = wrk.format("POST", "/recommend", headers, "csrf_token=" .. token .. "&sample=" .. imdb_id)
    end
  elseif kind == "upload" then
    local boundary = "posterbench-wrk-boundary"
    for number, path in ipairs(lines(os.getenv("WRK_POSTERS"))) do
      local body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" .. token ..
        "\r\n--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"poster\"; filename=\"poster" .. number ..
        ".jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" .. read_file(path) .. "\r\n--" .. boundary .. "--\r\n"
      local headers = {Cookie = base.Cookie, ["Content-Type"] = "multipart/form-data; boundary=" .. boundary}
      prepared[#prepared + 1] = wrk.format("POST", "/recommend", headers, body)
    end
  elseif kind == "feedback" then
    local paths = lines(os.getenv("WRK_VOTES"))
    local stride = tonumber(os.getenv("WRK_THREADS"))
    for position = number + 1, #paths, stride do  -- this thread's share: every stride-th vote
      local headers = {Cookie = base.Cookie, ["Content-Type"] = "application/x-www-form-urlencoded"}
      prepared[#prepared + 1] = wrk.format("POST", paths[position], headers, "csrf_token=" .. token .. "&rating=good")
    end
  else
    error("WRK_KIND must be upload, sample, feedback or bandit, not " .. tostring(kind))
  end
  if #prepared == 0 then error("nothing to send for " .. kind) end
  next_one = 1 + (number * 7) % #prepared  -- threads start at different posters
end

function request()
  local chosen = prepared[next_one]
  next_one = next_one % #prepared + 1
  return chosen
end

function response(status, _headers, _body)
  requests_made = requests_made + 1
  last_answer = now_seconds()
  local expected = (kind == "bandit") and 200 or 303
  if status ~= expected then unexpected = unexpected + 1 end
  if requests_made >= limit or (kind == "feedback" and requests_made >= #prepared) then
    wrk.thread:stop()
    local stopped = os.getenv("WRK_STOPPED")
    if stopped then assert(io.open(stopped .. number, "w")):close() end
  end
end

function done(summary, latency, _requests)
  -- wrk reports the whole -d duration (or until it was interrupted) even when every thread stopped at WRK_REQUESTS;
  -- the run really lasted until the last answer.
  local failed, finished = 0, started
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("unexpected")
    finished = math.max(finished, thread:get("last_answer"))
  end
  local errors = summary.errors
  local out = assert(io.open(os.getenv("WRK_OUT"), "w"))
  out:write(string.format(
    '{"requests": %d, "seconds": %.3f, "unexpected_status": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.1f, "p95_ms": %.1f, "p99_ms": %.1f, "max_ms": %.1f}\n',
    summary.requests, math.min(finished - started, summary.duration / 1e6), failed,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  out:close()
end
