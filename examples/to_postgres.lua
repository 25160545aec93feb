-- examples/to_postgres.lua: keep a PostgreSQL table (or a PostgreSQL-protocol service such as
-- Hologres or AnalyticDB for PostgreSQL) in step with the tunnel's table, through
-- lunnel.sinks.postgres (libpq): PUT replaces the row, UPDATE sets changed columns (deleted
-- ones to NULL), DELETE removes it; each batch in one transaction, handled after COMMIT.
-- Configured only by --custom JSON:
--   dsn              libpq URI or key=value string (required), e.g.
--                    "postgresql://lunnel@127.0.0.1:5432/reporting" (password: PGPASSWORD)
--   table            target table, "name" or "schema.name" (required)
--   create           true: create the table from the primary key when it is missing
--   connect_timeout  seconds (10)
--   lunnel run --table orders --tunnel cdc \
--     --custom '{"dsn":"postgresql://lunnel@127.0.0.1/reporting","table":"orders_copy","create":true}' \
--     examples/to_postgres.lua
local postgres = require("lunnel.sinks.postgres")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  ctx.state.sink = ctx.state.sink or postgres.new{
    dsn = c.dsn, table = c.table, create = c.create, connect_timeout = c.connect_timeout,
  }
end

function M.process(ctx, batch)
  ctx.state.sink:write_batch(batch) -- one transaction; returns after COMMIT, else raises
end

return M
