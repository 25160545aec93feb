-- examples/print.lua: prints every record readably, one line each, e.g.
--   [channel-1] UPDATE pk(id=42, k="a") name="x" n=3 gone:DELETE_ALL_VERSIONS seq(0,1700000000000001,7)
-- Run: lunnel run ... examples/print.lua   (or against the emulator, see README)
local M = {}

function M.open(ctx)
  ctx.log.info("print: channel open", { channel = ctx.channel_id })
end

function M.process(ctx, batch)
  local out = io.write -- looked up per call so specs can capture it
  local prefix = "[" .. tostring(ctx.channel_id) .. "] "
  for _, r in batch:iter() do
    -- one write per line: workers share stdout, and only a single fwrite is atomic
    out(prefix .. tostring(r) .. "\n")
  end
end

return M
