-- wrk script for `make loadtest` (bench/loadtest.py): a mixed request file.
--
-- Arguments (after `--`): <requests_file> <threads> <acknowledged_prefix>
-- Each line of the file is one request, six tab-separated fields (any may be empty but the
-- first three):
--   kind  method  path  authorization  cookie  body
-- Thread k of n takes lines k, k+n, k+2n, ... in order and starts over at the end, skipping
-- the "book" lines the second time round (a booking request is sent at most once). Every 201
-- answer's body (a booking's id, staff and start) is appended, one a line, to
-- <acknowledged_prefix>.<thread>, for the check that no acknowledged booking is lost.
-- done() prints machine-readable lines: LOADTEST_RESULT, LOADTEST_STATUS, LOADTEST_PASSES,
-- LOADTEST_BOOKED (booking requests sent), LOADTEST_5XX_BY_SECOND (unix second=count) and
-- LOADTEST_SAMPLE (one error answer).

local made = 0
local threads = {}

function setup(thread)
  thread:set("tid", made)
  made = made + 1
  table.insert(threads, thread)
end

statuses = {}
sample = nil
passes = 1
booked = 0 -- booking requests sent
failed = {} -- 5xx answers by wall-clock second (os.time), to place them against the faults

local lines, count, index = {}, 0, 1
local acknowledged = nil

local function split(line)
  local fields, start = {}, 1
  while true do
    local tab = line:find("\t", start, true)
    if tab == nil then
      table.insert(fields, line:sub(start))
      return fields
    end
    table.insert(fields, line:sub(start, tab - 1))
    start = tab + 1
  end
end

function init(args)
  local path, n = args[1], tonumber(args[2] or "1")
  local line_no = 0
  for line in io.lines(path) do
    if line_no % n == tid then
      local f = split(line)
      local headers = {}
      if f[4] ~= nil and f[4] ~= "" then headers["Authorization"] = f[4] end
      if f[5] ~= nil and f[5] ~= "" then headers["Cookie"] = f[5] end
      local body = f[6]
      if body == "" then body = nil end
      if body ~= nil then headers["Content-Type"] = "application/json" end
      count = count + 1
      lines[count] = { book = (f[1] == "book"), request = wrk.format(f[2], f[3], headers, body) }
    end
    line_no = line_no + 1
  end
  if args[3] ~= nil and args[3] ~= "" then
    acknowledged = io.open(args[3] .. "." .. tostring(tid), "w")
  end
end

-- wrk 4.1 calls request() once on thread 0's state before the load starts, to check the
-- script (script_verify_request), and never sends what that call returns: answer it with a
-- request of no line's, so that no booking line is used up unsent
local checked = false

function request()
  if not checked then
    checked = true
    if tid == 0 then
      return wrk.format("GET", "/healthz")
    end
  end
  for _ = 1, count do
    local line = lines[index]
    local first_pass = passes == 1
    index = index + 1
    if index > count then
      index = 1
      passes = passes + 1
    end
    if first_pass or not line.book then
      if line.book then booked = booked + 1 end
      return line.request
    end
  end
  return wrk.format(nil, nil, nil, nil) -- only booking lines, all sent: the bare URL
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 and acknowledged ~= nil then
    acknowledged:write((string.gsub(body or "", "[\r\n]", " ")) .. "\n")
    acknowledged:flush()
  end
  if status >= 500 then
    local second = os.time()
    failed[second] = (failed[second] or 0) + 1
  end
  if status >= 500 and sample == nil then
    sample = tostring(status) .. " " .. string.sub(body or "", 1, 200)
  elseif status >= 400 and sample == nil and status ~= 409 then
    sample = tostring(status) .. " " .. string.sub(body or "", 1, 200)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "LOADTEST_RESULT requests=%.0f duration_us=%.0f status=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max
  ))
  local total, kept, most, sent, by_second = {}, nil, 1, 0, {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      total[code] = (total[code] or 0) + n
    end
    kept = kept or thread:get("sample")
    most = math.max(most, thread:get("passes"))
    sent = sent + thread:get("booked")
    for second, n in pairs(thread:get("failed")) do
      by_second[second] = (by_second[second] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(total) do
    table.insert(parts, string.format("%s=%d", tostring(code), n))
  end
  io.write("LOADTEST_STATUS " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("LOADTEST_PASSES %d\n", most))
  io.write(string.format("LOADTEST_BOOKED %d\n", sent))
  local seconds = {}
  for second, n in pairs(by_second) do
    table.insert(seconds, string.format("%d=%d", second, n))
  end
  io.write("LOADTEST_5XX_BY_SECOND " .. table.concat(seconds, " ") .. "\n")
  if kept then
    io.write("LOADTEST_SAMPLE " .. string.gsub(kept, "[\r\n]", " ") .. "\n")
  end
end
