-- examples/filter_jsonl.lua: filter records and write them as JSON Lines.
-- CustomValue (--custom JSON), all optional:
--   sink    file to append to (default: stdout)
--   actions list of actions to keep, e.g. ["PUT","UPDATE"] (default: all)
--   where   {column = "status", equals = "paid"}: keep records whose column equals the value
--           (strings are compared in place, without copying)
--   fields  list of attribute columns to project; without it each line is r:tojson(),
--           the exact full record (64-bit integers included)
-- A projected line is {"action":..., "pk":{...}, "<field>":value...}; an INTEGER beyond 2^53
-- is written as a string there (lua-cjson cannot encode int64 exactly).
local cjson = require("cjson")

local M = {}

local function sink(ctx)
  local s = ctx.state.sink
  if s then return s end
  local path = ctx.custom and ctx.custom.sink
  if path then
    s = assert(io.open(path, "a"))
  else
    s = io.stdout
  end
  ctx.state.sink = s -- ctx.state survives hot reloads: the handle is reused
  return s
end

local function keep(r, custom)
  if custom.actions then
    local ok = false
    for _, a in ipairs(custom.actions) do
      if a == r.action then ok = true break end
    end
    if not ok then return false end
  end
  local where = custom.where
  if where then
    local want = where.equals
    if type(want) == "string" then return r:equals(where.column, want) end
    return r:get(where.column) == want
  end
  return true
end

local function plain(v)
  if type(v) == "cdata" then return (tostring(v):gsub("U?LL$", "")) end
  return v
end

local function project(r, fields)
  local pk = {}
  for i = 1, #r.pk do
    local name, v = r:pk(i)
    pk[name] = plain(v)
  end
  local t = { action = r.action, pk = pk }
  for _, f in ipairs(fields) do
    local v = r:get(f)
    if v ~= nil then t[f] = plain(v) end
  end
  return cjson.encode(t)
end

function M.open(ctx)
  sink(ctx)
end

function M.process(ctx, batch)
  local custom = ctx.custom or {}
  local out = sink(ctx)
  local fields = custom.fields
  local lines = {}
  for _, r in batch:iter() do
    if keep(r, custom) then
      lines[#lines + 1] = fields and project(r, fields) or r:tojson()
    end
  end
  if #lines > 0 then
    out:write(table.concat(lines, "\n"), "\n")
    out:flush() -- returning means "may be checkpointed": the lines must be out first
  end
end

function M.shutdown(ctx)
  local s = ctx.state.sink
  if s and s ~= io.stdout then s:close() end
  ctx.state.sink = nil
end

return M
