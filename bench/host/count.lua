-- count.lua: benchmark script: the host's own cost (queue, decode on the worker, one pcall
-- per batch, view wrap) with a script that only counts records.
local M = {}
function M.process(ctx, batch)
  ctx.state.n = (ctx.state.n or 0) + #batch
end
return M
