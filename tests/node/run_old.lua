-- run_old.lua: prints, for every record, the previous values the change carries (r:old) of
-- the columns the end-to-end origin test names, one line per record on stdout:
--   OLD <action> <id> price=<old price|nil> note=<old note|nil> other=<old other|nil>
-- (tests/node/emulator_origin_run.test.mjs compares them with what it wrote).
local M = {}

local function show(v)
  if v == nil then return "nil" end
  return tostring(v)
end

function M.process(ctx, batch)
  for _, r in batch:iter() do
    io.stdout:write(string.format("OLD %s %s price=%s note=%s other=%s\n", r.action,
      tostring(r.pk.id), show(r:old("price")), show(r:old("note")), show(r:old("other"))))
  end
  io.stdout:flush()
end

return M
