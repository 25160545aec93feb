-- run_collect.lua: the script the `lunnel run` end-to-end tests (tests/node/run_*.test.mjs)
-- consume tunnels with. Every record becomes one exact JSON line in <custom.dir>/<channel>.jsonl
-- (one file per channel: a key lives in one channel, so per-key order is the file's order):
--   {"ch":..,"action":"PUT|UPDATE|DELETE","pk":[[name,type,value]..],
--    "cols":[[name,type,value,op,timestamp]..]}
-- Values are strings, so nothing is lost on the way: INTEGER in decimal (all 64 bits),
-- DOUBLE as %.17g, BOOLEAN true/false, STRING as is, BINARY in hex; deleted cells carry
-- type and value null. custom.commit = "none" | "all" drives ctx:commit() (manual mode);
-- custom.sleep_ms slows each batch down (drain tests); custom.events appends open/shutdown.
local M = {}

local ffi = require("ffi")
pcall(ffi.cdef, "int usleep(unsigned int usec);")

local files = {}

local function esc(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function fmt(t, v)
  if v == nil or t == nil then return "null" end
  if t == "INTEGER" then
    if type(v) == "cdata" then return esc((tostring(v):gsub("[LU]+$", ""))) end
    return esc(string.format("%.0f", v))
  elseif t == "DOUBLE" then
    return esc(string.format("%.17g", v))
  elseif t == "BOOLEAN" then
    return esc(tostring(v))
  elseif t == "BINARY" then
    return esc(hex(v))
  end
  return esc(tostring(v))
end

local function line(ctx, r)
  local pk = {}
  local i = 1
  while true do
    local name, v = r:pk(i)
    if name == nil then break end
    pk[#pk + 1] = "[" .. esc(name) .. "," .. esc(r:type(name) or "?") .. "," .. fmt(r:type(name), v) .. "]"
    i = i + 1
  end
  local cols = {}
  for name, v, op, ts in r:columns() do
    local t = v ~= nil and r:type(name) or nil
    cols[#cols + 1] = "[" .. esc(name) .. "," .. (t and esc(t) or "null") .. "," .. fmt(t, v) .. ","
      .. esc(op) .. "," .. (ts and string.format("%.0f", ts) or "null") .. "]"
  end
  return '{"ch":' .. esc(ctx.channel_id) .. ',"action":' .. esc(r.action) .. ',"pk":['
    .. table.concat(pk, ",") .. '],"cols":[' .. table.concat(cols, ",") .. "]}\n"
end

local function event(ctx, what)
  local path = ctx.custom and ctx.custom.events
  if not path then return end
  local f = assert(io.open(path, "a"))
  f:write(what, " ", ctx.channel_id, "\n")
  f:close()
end

function M.open(ctx)
  local f = assert(io.open(ctx.custom.dir .. "/" .. ctx.channel_id .. ".jsonl", "a"))
  files[ctx.channel_id] = f
  event(ctx, "open")
end

function M.process(ctx, batch)
  local out = {}
  for _, r in batch:iter() do
    out[#out + 1] = line(ctx, r)
  end
  local f = files[ctx.channel_id]
  f:write(table.concat(out))
  f:flush()
  local ms = ctx.custom.sleep_ms
  if ms and ms > 0 then ffi.C.usleep(ms * 1000) end
  if ctx.custom.commit == "all" then ctx:commit() end
end

function M.shutdown(ctx)
  local f = files[ctx.channel_id]
  if f then f:close() end
  files[ctx.channel_id] = nil
  event(ctx, "shutdown")
end

return M
