-- run_ids.lua: a light collector for the `lunnel run` failure and scale tests
-- (tests/node/run_faults.test.mjs, run_crash.test.mjs, run_policy.test.mjs): one line per
-- record, "<pk id> <value of column v or ->\n", appended to <custom.dir>/<channel>.ids with one
-- write per batch, and "#open\n" when a channel opens (a segment that starts at the channel's
-- checkpoint). Poison: a record with a column `poison` makes process() raise, always, or only
-- the first custom.poison_fail times per channel (a transient failure for --on-error retry).
-- custom.stamp appends " <CLOCK_MONOTONIC microseconds>" to every line (processing time, the
-- same clock for every process on the machine: orders records across channels).
local M = {}

local ffi = require("ffi")
pcall(ffi.cdef, [[
typedef struct { long tv_sec; long tv_nsec; } lunnel_test_timespec;
int clock_gettime(int clk, lunnel_test_timespec *ts);
]])
local ts = ffi.new("lunnel_test_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return string.format("%d", tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000))
end

local files, failures = {}, {}

function M.open(ctx)
  local f = assert(io.open(ctx.custom.dir .. "/" .. ctx.channel_id .. ".ids", "a"))
  f:setvbuf("no")
  f:write("#open\n")
  files[ctx.channel_id] = f
end

function M.process(ctx, batch)
  local out, n = {}, 0
  local limit = ctx.custom.poison_fail
  for _, r in batch:iter() do
    if r:get("poison") ~= nil then
      local k = ctx.channel_id
      failures[k] = (failures[k] or 0) + 1
      if limit == nil or failures[k] <= limit then
        error("poison record " .. tostring(r.pk.id))
      end
    end
    n = n + 1
    local v = r:get("v")
    out[n] = tostring(r.pk.id) .. " " .. (v ~= nil and tostring(v) or "-")
  end
  if ctx.custom.stamp then
    local t = " " .. now_us()
    for i = 1, n do out[i] = out[i] .. t end
  end
  if n > 0 then
    files[ctx.channel_id]:write(table.concat(out, "\n") .. "\n")
  end
end

function M.shutdown(ctx)
  local f = files[ctx.channel_id]
  if f then f:close() end
  files[ctx.channel_id] = nil
end

return M
