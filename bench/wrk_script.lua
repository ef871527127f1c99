-- wrk script for `python -m bench`.
--
-- Arguments (after `--`): [requests_file|""] [threads] [method]
-- Without a file every request is the same bodiless request to the URL (GET unless a method is
-- given). With one, each line is
-- "<Authorization header value>\t<JSON body>" and becomes a POST; thread k of n takes lines
-- k, k+n, k+2n, ... and cycles through them (the benchmark writes more lines than a run can
-- use, so no line is sent twice). Responses are counted by status, with one error body kept.
-- done() prints machine-readable lines for the benchmark.

local made = 0
local threads = {}

function setup(thread)
  thread:set("tid", made)
  made = made + 1
  table.insert(threads, thread)
end

statuses = {}
sample = nil

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 400 and sample == nil then
    sample = tostring(status) .. " " .. string.sub(body or "", 1, 200)
  end
end

local auths, bodies, count, index = {}, {}, 0, 1

function init(args)
  local path = args[1]
  local threads = tonumber(args[2] or "1")
  if args[3] ~= nil and args[3] ~= "" then
    wrk.method = args[3]
  end
  if path == nil or path == "" then
    return
  end
  local line_no = 0
  for line in io.lines(path) do
    if line_no % threads == tid then
      local tab = line:find("\t", 1, true)
      count = count + 1
      auths[count] = line:sub(1, tab - 1)
      bodies[count] = line:sub(tab + 1)
    end
    line_no = line_no + 1
  end
end

function request()
  if count == 0 then
    return wrk.format(nil, nil, nil, nil)
  end
  local i = index
  index = index + 1
  if index > count then
    index = 1
  end
  return wrk.format(
    "POST",
    nil,
    { ["Authorization"] = auths[i], ["Content-Type"] = "application/json" },
    bodies[i]
  )
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%.0f duration_us=%.0f status=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f p50_us=%.0f p99_us=%.0f\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)
  ))
  local total = {}
  local kept = nil
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      total[code] = (total[code] or 0) + n
    end
    kept = kept or thread:get("sample")
  end
  local parts = {}
  for code, n in pairs(total) do
    table.insert(parts, string.format("%s=%d", tostring(code), n))
  end
  io.write("BENCH_STATUS " .. table.concat(parts, " ") .. "\n")
  if kept then
    io.write("BENCH_SAMPLE " .. string.gsub(kept, "[\r\n]", " ") .. "\n")
  end
end
