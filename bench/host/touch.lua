-- touch.lua: benchmark script: touches every column of every record through the view
-- (integers read as numbers, strings measured without copying), like a filter would.
local M = {}
local names_n = { "n0", "n1", "n2", "n3", "n4" }
local names_s = { "s0", "s1", "s2", "s3", "s4" }
function M.process(ctx, batch)
  local sum, bytes = 0, 0
  for _, r in batch:iter() do
    sum = sum + r.pk.id
    for k = 1, 5 do
      sum = sum + r:get(names_n[k])
      bytes = bytes + r:len(names_s[k])
    end
  end
  ctx.state.sum = (ctx.state.sum or 0) + sum
  ctx.state.bytes = (ctx.state.bytes or 0) + bytes
end
return M
