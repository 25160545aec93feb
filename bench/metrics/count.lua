-- count.lua: the benchmark's script: counts records, touches nothing else (the figure is the
-- runtime's own cost per record: reading, scanning, decoding, queues, checkpoints, metrics).
local M = {}
local n = 0
function M.process(ctx, batch)
  n = n + #batch
end
return M
