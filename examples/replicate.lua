-- examples/replicate.lua: replicate the tunnel's table into another Tablestore table (same
-- primary key schema) with lunnel.sinks.tablestore: BatchWriteRow, cell timestamps kept,
-- puts / updates (incl. version deletes) / deletes replayed faithfully, per-key order kept.
-- CustomValue (--custom JSON):
--   endpoint   target endpoint (default: $TABLESTORE_ENDPOINT), e.g.
--              "https://backup.cn-hangzhou.ots.aliyuncs.com"
--   instance   target instance (default: $TABLESTORE_INSTANCE)
--   table      target table (required)
--   retries, backoff, timeout, ca_file   see lunnel.sinks.tablestore
-- Credentials: $TABLESTORE_ACCESS_KEY_ID / $TABLESTORE_ACCESS_KEY_SECRET
-- [/ $TABLESTORE_SECURITY_TOKEN], the same ones lunnel run uses.
--   lunnel run ... --custom '{"table":"orders_copy"}' examples/replicate.lua
local tablestore = require("lunnel.sinks.tablestore")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  if type(c.table) ~= "string" then error("replicate: --custom needs {\"table\": \"target\"}") end
  ctx.state.rep = ctx.state.rep or tablestore.new{
    endpoint = c.endpoint or os.getenv("TABLESTORE_ENDPOINT"),
    instance = c.instance or os.getenv("TABLESTORE_INSTANCE"),
    table = c.table, retries = c.retries, backoff = c.backoff, timeout = c.timeout,
    ca_file = c.ca_file,
  }
end

function M.process(ctx, batch)
  ctx.state.rep:write_batch(batch) -- returns once the target applied every record, else raises
end

return M
