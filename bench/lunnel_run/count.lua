-- count.lua: the benchmark script of bench/lunnel_run: counts records per channel, touches
-- nothing else (so the figures are lunnel's own cost: reading, scanning, decoding, the Lua
-- call), and logs the channel's total when it ends.
local M = {}

function M.open(ctx)
  ctx.state.n = 0
end

function M.process(ctx, batch)
  ctx.state.n = ctx.state.n + #batch
end

function M.shutdown(ctx)
  ctx.log.info("channel counted", { records = ctx.state.n })
end

return M
