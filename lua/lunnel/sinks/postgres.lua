-- lunnel.sinks.postgres: replicate the tunnel's table into a PostgreSQL table (or any
-- PostgreSQL-protocol service: Hologres, AnalyticDB for PostgreSQL, ...) through libpq, from
-- process(ctx, batch), on the Lua worker thread.
--
--   local postgres = require("lunnel.sinks.postgres")
--   function M.open(ctx)
--     ctx.state.pg = ctx.state.pg or postgres.new{
--       dsn = "postgresql://lunnel@db.example:5432/reporting",  -- libpq URI or key=value string
--       table = "orders_copy",              -- or "schema.table"
--       create = true,                      -- create it from the primary key when missing
--       connect_timeout = 10,               -- seconds
--     }
--   end
--   function M.process(ctx, batch)
--     ctx.state.pg:write_batch(batch)      -- one transaction; returns after COMMIT
--   end
--
-- Semantics (shared with lunnel.sinks.mysql): see lua/lunnel/sinks/sql.lua. Types: INTEGER ->
-- bigint, DOUBLE -> double precision, STRING -> text, BOOLEAN -> boolean, BINARY -> bytea.
-- The primary key columns become the table's PRIMARY KEY (the upsert needs that constraint
-- on a table you create yourself). Passwords: prefer PGPASSWORD or ~/.pgpass to a password in
-- the DSN; a DSN in a message is shown with its password replaced by ***.
--
-- Connections: one per worker thread and DSN (the sinks of the channels a worker runs share
-- it; a worker runs one batch at a time). The C half is build/lib/lunnel_sink_postgres.so
-- (runtime/src/sinks/sink_postgres.c), the only code linking libpq.
local ffi = require("ffi")
local module = require("lunnel.sinks.module")
local sql = require("lunnel.sinks.sql")

local C = module.load{
  name = "postgres", library = "libpq", runtime_package = "libpq5", dev_package = "libpq-dev",
  probe = "struct lunnel_pg",
  cdef = [[
struct lunnel_pg;
typedef struct lunnel_pg lunnel_pg;
lunnel_pg *lunnel_pg_new(void);
void lunnel_pg_free(lunnel_pg *p);
sql_text *lunnel_pg_buf(lunnel_pg *p);
int lunnel_pg_connect(lunnel_pg *p, const char *conninfo, int timeout_s);
int lunnel_pg_connected(const lunnel_pg *p);
const char *lunnel_pg_error(const lunnel_pg *p);
void lunnel_pg_sql_reset(lunnel_pg *p);
int lunnel_pg_value(lunnel_pg *p, const lunnel_column *c);
int lunnel_pg_exec(lunnel_pg *p);
int lunnel_pg_exec_copy(lunnel_pg *p, size_t split, const char *copy_cmd);
int lunnel_pg_copy_raw(lunnel_pg *p, const char *s, size_t n);
int lunnel_pg_copy_value(lunnel_pg *p, const lunnel_column *c);
const char *lunnel_pg_copy_error(const lunnel_pg *p);
int lunnel_pg_query(lunnel_pg *p, const char *sql);
const char *lunnel_pg_result(const lunnel_pg *p, size_t *len);
]],
}

local M = {}

-- ---- the connection: sql.Conn plus COPY ----------------------------------------------------
local PgConn = setmetatable({}, { __index = sql.Conn })
PgConn.__index = PgConn

local function copy_failed(self)
  error("lunnel.sinks.postgres: " .. ffi.string(C.lunnel_pg_copy_error(self.h)), 0)
end
function PgConn:reset()
  C.lunnel_pg_sql_reset(self.h)
  self.copy_cmd, self.copy_split = nil, nil
end
-- COPY data: raw text and cells in COPY text format.
function PgConn:copy_raw(s) if C.lunnel_pg_copy_raw(self.h, s, #s) ~= 0 then copy_failed(self) end end
function PgConn:copy_value(col) if C.lunnel_pg_copy_value(self.h, col) ~= 0 then copy_failed(self) end end
-- The COPY statement runs at this point of the statements (its data: the copy_* calls).
function PgConn:copy_here(cmd)
  self.copy_cmd, self.copy_split = cmd, self:sql_len()
end
function PgConn:finish()
  local rc
  if self.copy_cmd then
    rc = C.lunnel_pg_exec_copy(self.h, self.copy_split, self.copy_cmd)
  else
    rc = C.lunnel_pg_exec(self.h)
  end
  if rc == 0 then return true end
  return false, self:error_text()
end

local connection = sql.pool{
  who = "lunnel.sinks.postgres", C = C, prefix = "lunnel_pg", dialect = 0, class = PgConn,
  connect = function(c)
    return C.lunnel_pg_connect(c.h, c.dsn, tonumber(c.opts.connect_timeout) or 10)
  end,
}

-- ---- the dialect ---------------------------------------------------------------------------
local TYPES = { INTEGER = "bigint", DOUBLE = "double precision", STRING = "text",
                BOOLEAN = "boolean", BINARY = "bytea" }

local function literal(s) return "'" .. s:gsub("'", "''") .. "'" end

-- The table's regclass text: quoted parts, as a literal.
local function regclass(t)
  local schema, name = t:match("^([^.]+)%.(.+)$")
  local q = function(x) return '"' .. x:gsub('"', '""') .. '"' end
  return literal(schema and (q(schema) .. "." .. q(name)) or q(t))
end
local function quoted_table(t)
  local schema, name = t:match("^([^.]+)%.(.+)$")
  local q = function(x) return '"' .. x:gsub('"', '""') .. '"' end
  return schema and (q(schema) .. "." .. q(name)) or q(t)
end

local dialect = {
  name = "postgres",
  begin_sql = "BEGIN",
  commit_sql = "COMMIT",
  connection = connection,
  columns_query = function(_, t)
    return "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(" .. regclass(t)
           .. ") AND attnum > 0 AND NOT attisdropped"
  end,
  exists_query = function(_, t)
    return "SELECT 1 WHERE to_regclass(" .. regclass(t) .. ") IS NOT NULL"
  end,
  create_sql = function(_, t, pk)
    local cols, names = {}, {}
    for _, p in ipairs(pk) do
      local q = '"' .. p[1]:gsub('"', '""') .. '"'
      cols[#cols + 1] = q .. " " .. TYPES[p[2]] .. " NOT NULL"
      names[#names + 1] = q
    end
    return "CREATE TABLE IF NOT EXISTS " .. quoted_table(t) .. " (" .. table.concat(cols, ", ")
           .. ", PRIMARY KEY (" .. table.concat(names, ", ") .. "))"
  end,
  add_column_sql = function(_, t, name, ty)
    return "ALTER TABLE " .. quoted_table(t) .. " ADD COLUMN IF NOT EXISTS \""
           .. name:gsub('"', '""') .. "\" " .. TYPES[ty]
  end,
  -- PUT rows (after their keys were deleted) by COPY FROM STDIN: far less parsing than a
  -- multi-row INSERT; small batches keep the INSERT (one round trip instead of three).
  bulk_insert = function(c, t, pk, names, rows)
    if #rows < 64 then return false end
    local q = function(x) return '"' .. x:gsub('"', '""') .. '"' end
    local list = {}
    for _, n in ipairs(pk) do list[#list + 1] = q(n) end
    for _, n in ipairs(names) do list[#list + 1] = q(n) end
    c:copy_here("COPY " .. quoted_table(t) .. " (" .. table.concat(list, ",") .. ") FROM STDIN")
    for _, e in ipairs(rows) do
      local rec = e.rec
      for j = 0, rec.pk_count - 1 do
        if j > 0 then c:copy_raw("\t") end
        c:copy_value(rec.pk + j)
      end
      local cols = e.cols
      for _, name in ipairs(names) do
        local v = cols[name]
        if v then c:copy_raw("\t") c:copy_value(v) else c:copy_raw("\t\\N") end
      end
      c:copy_raw("\n")
    end
    return true
  end,
  upsert_tail = function(c, pk, names)
    c:sql(" ON CONFLICT (")
    for i, name in ipairs(pk) do if i > 1 then c:sql(",") end c:ident(name) end
    c:sql(") DO UPDATE SET ")
    for i, name in ipairs(names) do
      if i > 1 then c:sql(",") end
      c:ident(name) c:sql("=EXCLUDED.") c:ident(name)
    end
  end,
}

M.TYPES = TYPES

-- postgres.new{dsn, table, create = false, connect_timeout = 10}: a sink; see above.
function M.new(opts)
  return sql.new(dialect, opts, 2)
end

return M
