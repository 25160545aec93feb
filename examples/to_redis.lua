-- examples/to_redis.lua: keep one Redis hash per row of the tunnel's table, through
-- lunnel.sinks.redis (hiredis): PUT replaces the hash, UPDATE sets / deletes the changed
-- fields, DELETE removes the key; each batch one MULTI/EXEC pipeline, handled after every
-- reply was OK. Configured only by --custom JSON:
--   url      redis://[[user]:password@]host[:port][/db] (required; or the password in
--            $REDIS_PASSWORD)
--   prefix   key prefix (default "<table>:" is not known here, so ""); key = prefix .. r:key()
--   timeout  seconds (5)
--   lunnel run --table orders --tunnel cdc \
--     --custom '{"url":"redis://127.0.0.1:6379/0","prefix":"orders:"}' examples/to_redis.lua
local redis = require("lunnel.sinks.redis")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  ctx.state.sink = ctx.state.sink or redis.new{
    url = c.url, prefix = c.prefix, timeout = c.timeout, password = os.getenv("REDIS_PASSWORD"),
  }
end

function M.process(ctx, batch)
  ctx.state.sink:write_batch(batch) -- one MULTI/EXEC; returns after every reply was OK
end

return M
