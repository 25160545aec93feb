-- examples/to_mysql.lua: keep a MySQL-protocol table (MySQL, MariaDB, RDS, PolarDB,
-- AnalyticDB for MySQL) in step with the tunnel's table, through lunnel.sinks.mysql
-- (libmariadb): PUT replaces the row, UPDATE sets changed columns (deleted ones to NULL),
-- DELETE removes it; each batch in one transaction, handled after COMMIT.
-- Configured only by --custom JSON:
--   dsn              mysql://user[:password]@host[:port]/db (required; the password may come
--                    from $MYSQL_PWD instead)
--   table            target table, "name" or "db.name" (required)
--   create           true: create the table from the primary key when it is missing
--   connect_timeout  seconds (10)
--   lunnel run --table orders --tunnel cdc \
--     --custom '{"dsn":"mysql://lunnel@127.0.0.1:3306/reporting","table":"orders_copy","create":true}' \
--     examples/to_mysql.lua
local mysql = require("lunnel.sinks.mysql")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  ctx.state.sink = ctx.state.sink or mysql.new{
    dsn = c.dsn, table = c.table, create = c.create, connect_timeout = c.connect_timeout,
  }
end

function M.process(ctx, batch)
  ctx.state.sink:write_batch(batch) -- one transaction; returns after COMMIT, else raises
end

return M
