-- run_limits_hog.lua: the script of tests/node/run_limits.test.mjs. It delegates to the ids
-- collector (custom.base, tests/node/run_ids.lua) after two misbehaviours chosen by custom:
--   custom.hog: the first call of each channel (a marker file per channel, so the hog is
--     not repeated after a state rebuild) fills a module-level table with 1 MiB strings in a
--     loop LuaJIT compiles, far past --memory-limit, writing a line to stderr first;
--   custom.stuck_channel: process() on that channel writes its batch's ids to
--     <dir>/stuck.txt, then spins forever in a compiled loop (nothing can interrupt it).
local M = {}
local keep = {}
local base

local function inner(ctx)
  if not base then base = dofile(ctx.custom.base) end
  return base
end

function M.open(ctx)
  local b = inner(ctx)
  if b.open then b.open(ctx) end
end

local function spin()
  local x = 0
  while true do x = x + 1 end
  return x
end

function M.process(ctx, batch)
  local c = ctx.custom
  if c.hog then
    local marker = c.dir .. "/hogged-" .. ctx.channel_id
    local f = io.open(marker, "r")
    if f then
      f:close()
    else
      f = assert(io.open(marker, "w"))
      f:close()
      io.stderr:write("hog: filling memory on ", ctx.channel_id, "\n")
      for i = 1, 100000 do
        keep[#keep + 1] = string.rep("x", 1048576 - 64) .. i
      end
    end
  end
  if c.stuck_channel == ctx.channel_id then
    local f = assert(io.open(c.dir .. "/stuck.txt", "w"))
    for _, r in batch:iter() do f:write(tostring(r.pk.id), "\n") end
    f:close()
    spin()
  end
  return inner(ctx).process(ctx, batch)
end

function M.shutdown(ctx)
  local b = inner(ctx)
  if b.shutdown then b.shutdown(ctx) end
end

return M
