-- lunnel.sinks.mysql: replicate the tunnel's table into a MySQL-protocol table (MySQL,
-- MariaDB, RDS, PolarDB, AnalyticDB for MySQL) through libmariadb, from process(ctx, batch),
-- on the Lua worker thread.
--
--   local mysql = require("lunnel.sinks.mysql")
--   function M.open(ctx)
--     ctx.state.my = ctx.state.my or mysql.new{
--       dsn = "mysql://lunnel@db.example:3306/reporting",  -- mysql://user[:password]@host[:port]/db
--       table = "orders_copy",            -- or "db.table"
--       create = true,                    -- create it from the primary key when missing
--       connect_timeout = 10,             -- seconds (reads and writes: 3x)
--     }                                   -- password: in the DSN, password = ..., or $MYSQL_PWD
--   end
--   function M.process(ctx, batch)
--     ctx.state.my:write_batch(batch)    -- one transaction; returns after COMMIT
--   end
--
-- Semantics (shared with lunnel.sinks.postgres): see lua/lunnel/sinks/sql.lua. Types: INTEGER
-- -> BIGINT, DOUBLE -> DOUBLE, STRING -> LONGTEXT, BOOLEAN ->
-- BOOLEAN, BINARY -> LONGBLOB (key columns: VARCHAR / VARBINARY sharing InnoDB's 3072-byte key); created tables are InnoDB,
-- utf8mb4 with the binary collation (keys compare byte by byte, as in Tablestore). The upsert
-- is INSERT ... ON DUPLICATE KEY UPDATE, so the table needs the primary key. MySQL has no NaN
-- or infinity: such a DOUBLE fails the batch naming the column.
--
-- Connections: one per worker thread and DSN. The C half is build/lib/lunnel_sink_mysql.so
-- (runtime/src/sinks/sink_mysql.c), the only code linking libmariadb.
local module = require("lunnel.sinks.module")
local sql = require("lunnel.sinks.sql")

local C = module.load{
  name = "mysql", library = "libmariadb", runtime_package = "libmariadb3",
  dev_package = "libmariadb-dev", probe = "struct lunnel_my",
  cdef = [[
struct lunnel_my;
typedef struct lunnel_my lunnel_my;
lunnel_my *lunnel_my_new(void);
void lunnel_my_free(lunnel_my *m);
sql_text *lunnel_my_buf(lunnel_my *m);
int lunnel_my_connect(lunnel_my *m, const char *host, unsigned port, const char *user,
                      const char *password, const char *db, unsigned timeout_s);
int lunnel_my_connected(const lunnel_my *m);
const char *lunnel_my_error(const lunnel_my *m);
void lunnel_my_sql_reset(lunnel_my *m);
int lunnel_my_value(lunnel_my *m, const lunnel_column *c);
int lunnel_my_exec(lunnel_my *m);
int lunnel_my_query(lunnel_my *m, const char *sql);
const char *lunnel_my_result(const lunnel_my *m, size_t *len);
]],
}

local M = {}

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- mysql://user[:password]@host[:port]/db -> { host, port, user, password, db } or nil, why.
function M.parse_dsn(dsn)
  local rest = dsn:match("^mysql://(.*)$") or dsn:match("^mariadb://(.*)$")
  if not rest then return nil, "dsn must look like mysql://user@host:port/db" end
  local hostpart, user, password, lone = module.split_userinfo(rest)
  user = user or lone
  local host, port, db = hostpart:match("^([^:/?]+):?(%d*)/?([^?]*)")
  if not host then return nil, "cannot read host/port/db from the dsn" end
  return { host = host, port = tonumber(port) or 3306, user = user and unescape(user),
           password = password and unescape(password), db = db ~= "" and unescape(db) or nil }
end

local connection = sql.pool{
  who = "lunnel.sinks.mysql", C = C, prefix = "lunnel_my", dialect = 1,
  connect = function(c)
    local d = c.parsed
    return C.lunnel_my_connect(c.h, d.host, d.port, d.user, c.opts.password or d.password or os.getenv("MYSQL_PWD"),
                               d.db, tonumber(c.opts.connect_timeout) or 10)
  end,
}

local TYPES = { INTEGER = "BIGINT", DOUBLE = "DOUBLE", STRING = "LONGTEXT", BOOLEAN = "BOOLEAN",
                BINARY = "LONGBLOB" }
local KEY_TYPES = { INTEGER = "BIGINT", DOUBLE = "DOUBLE", BOOLEAN = "BOOLEAN" }

local function q(x) return "`" .. x:gsub("`", "``") .. "`" end
local function literal(s) return "'" .. s:gsub("\\", "\\\\"):gsub("'", "''") .. "'" end
local function quoted_table(t)
  local schema, name = t:match("^([^.]+)%.(.+)$")
  return schema and (q(schema) .. "." .. q(name)) or q(t)
end
-- information_schema conditions for "db.table" or "table" (in the connection's database).
local function where_table(t)
  local schema, name = t:match("^([^.]+)%.(.+)$")
  return "table_schema = " .. (schema and literal(schema) or "DATABASE()") .. " AND table_name = "
         .. literal(name or t)
end

local dialect = {
  name = "mysql",
  begin_sql = "START TRANSACTION",
  commit_sql = "COMMIT",
  connection = function(dsn, opts)
    local c = connection(dsn, opts)
    if not c.parsed then
      local parsed, why = M.parse_dsn(dsn)
      if not parsed then error("lunnel.sinks.mysql: " .. why .. " (" .. module.redact(dsn) .. ")", 0) end
      c.parsed = parsed
    end
    return c
  end,
  columns_query = function(_, t)
    return "SELECT column_name FROM information_schema.columns WHERE " .. where_table(t)
  end,
  exists_query = function(_, t)
    return "SELECT 1 FROM information_schema.tables WHERE " .. where_table(t)
  end,
  -- InnoDB keys hold at most 3072 bytes: variable-length key columns share what the fixed
  -- ones leave (utf8mb4: 4 bytes a character), each at most Tablestore's 1 KB limit.
  create_sql = function(_, t, pk)
    local budget, nvar = 3072, 0
    for _, p in ipairs(pk) do
      if p[2] == "STRING" or p[2] == "BINARY" then nvar = nvar + 1 else budget = budget - 8 end
    end
    local share = nvar > 0 and math.floor(budget / nvar) or 0
    local cols, names = {}, {}
    for _, p in ipairs(pk) do
      local ty = KEY_TYPES[p[2]]
      if p[2] == "STRING" then ty = ("VARCHAR(%d)"):format(math.min(1024, math.floor(share / 4)))
      elseif p[2] == "BINARY" then ty = ("VARBINARY(%d)"):format(math.min(1024, share)) end
      cols[#cols + 1] = q(p[1]) .. " " .. ty .. " NOT NULL"
      names[#names + 1] = q(p[1])
    end
    return "CREATE TABLE IF NOT EXISTS " .. quoted_table(t) .. " (" .. table.concat(cols, ", ")
           .. ", PRIMARY KEY (" .. table.concat(names, ", ") .. ")) ENGINE=InnoDB"
           .. " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
  end,
  -- plain ADD COLUMN (MySQL has no IF NOT EXISTS there); a duplicate means another worker did it
  add_column_sql = function(_, t, name, ty)
    return "ALTER TABLE " .. quoted_table(t) .. " ADD COLUMN " .. q(name) .. " " .. TYPES[ty]
  end,
  ddl_done = function(err) return err:find("error 1060", 1, true) ~= nil end,
  upsert_tail = function(c, _, names)
    c:sql(" ON DUPLICATE KEY UPDATE ")
    for i, name in ipairs(names) do
      if i > 1 then c:sql(",") end
      c:ident(name) c:sql("=VALUES(") c:ident(name) c:sql(")")
    end
  end,
}

M.TYPES = TYPES

-- mysql.new{dsn, table, create = false, connect_timeout = 10, password = nil}: a sink.
function M.new(opts)
  return sql.new(dialect, opts, 2)
end

return M
