-- columns.lua: the column-access benchmark script of bench/lunnel_run, side by side with
-- count.lua: reads every column of every record (the key and each cell's name, value, op and
-- timestamp through r:columns()), so the difference to count.lua is the cost of column access.
local M = {}

function M.open(ctx)
  ctx.state.n = 0
  ctx.state.bytes = 0
end

function M.process(ctx, batch)
  local n, bytes = ctx.state.n, ctx.state.bytes
  for _, r in batch:iter() do
    local id = r.pk.id
    if id ~= nil then n = n + 1 end
    for name, v in r:columns() do
      if type(v) == "string" then bytes = bytes + #v else bytes = bytes + 8 end
      bytes = bytes + #name
    end
  end
  ctx.state.n, ctx.state.bytes = n, bytes
end

function M.shutdown(ctx)
  ctx.log.info("channel counted", { records = ctx.state.n, bytes = ctx.state.bytes })
end

return M
