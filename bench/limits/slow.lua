-- slow.lua: the script of bench/limits/run.sh: a slow consumer (custom.sleep_ms per batch,
-- default 40) that counts records, so reads outpace processing and the held batches fill
-- --max-inflight-bytes; logs the channel's total when it ends.
local ffi = require("ffi")
pcall(ffi.cdef, "int usleep(unsigned int usec);")
local M = {}

function M.open(ctx)
  ctx.state.n = 0
end

function M.process(ctx, batch)
  ctx.state.n = ctx.state.n + #batch
  ffi.C.usleep(((ctx.custom and ctx.custom.sleep_ms) or 40) * 1000)
end

function M.shutdown(ctx)
  ctx.log.info("channel counted", { records = ctx.state.n })
end

return M
