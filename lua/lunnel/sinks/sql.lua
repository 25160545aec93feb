-- lunnel.sinks.sql: the replication logic the two SQL sinks share (lunnel.sinks.postgres,
-- lunnel.sinks.mysql); each supplies a connection object and its dialect.
--
-- The target row follows the source row: PUT replaces the row, UPDATE sets the changed
-- columns and sets deleted ones (DELETE_ONE_VERSION / DELETE_ALL_VERSIONS) to NULL, DELETE
-- removes it. A batch is first reduced to one net change per primary key (in stream order:
-- a PUT or DELETE resets what came before; an UPDATE after a DELETE creates the row with the
-- updated columns, as UpdateRow does), then applied in ONE transaction with multi-row
-- statements:
--   DELETE ... WHERE (pk) IN (...)         keys whose net change is DELETE or PUT
--   INSERT ... VALUES (...),(...)          PUT rows (columns they lack stay NULL)
--   INSERT ... upsert ...                  UPDATE rows, one statement per set of columns
--   UPDATE ... SET c = NULL WHERE ...      UPDATE rows that only delete columns
-- and write_batch returns only after COMMIT succeeded. Applying the same changes again gives
-- the same rows (every statement sets values, none adds to them), so a batch re-delivered
-- after a crash converges: exactly-once in effect.
--
-- Columns keep their Tablestore names (quoted identifiers); types map INTEGER->bigint,
-- DOUBLE->double, STRING->text, BOOLEAN->boolean, BINARY->bytea/blob (the dialect's names).
-- With create = true a missing table is created from the first record's primary key; a new
-- attribute column is added (ALTER TABLE ... ADD COLUMN, before the batch's transaction) with
-- the type of its first value. A value of another type in an existing column is converted
-- by the server if it can, else the batch fails with the server's message.
--
-- Multiple versions: the target holds one value per cell, the newest written: of several
-- versions of a column in one change the one with the largest timestamp.
local ffi = require("ffi")
require("lunnel.record") -- declares lunnel_column (the record view ABI)
local module = require("lunnel.sinks.module")

local M = {}

-- ---- the connection object both SQL modules share ------------------------------------------
-- The statement text is built in C (sql_text.c, compiled into each module); each module
-- exports <prefix>_new/_free/_buf/_connected/_error/_sql_reset/_value/_exec/_query/_result.
if not pcall(ffi.typeof, "struct sql_text") then
  ffi.cdef [[
struct sql_text;
typedef struct sql_text sql_text;
void lunnel_sql_reset(sql_text *t);
size_t lunnel_sql_len(const sql_text *t);
int lunnel_sql_append(sql_text *t, const char *s, size_t n);
int lunnel_sql_ident(sql_text *t, const char *s, size_t n, int dialect);
const char *lunnel_sql_error(const sql_text *t);
const char *lunnel_sql_text(const sql_text *t);
]]
end

local Conn = {}
Conn.__index = Conn
M.Conn = Conn

-- spec = { who, C (the module), prefix ("lunnel_pg"), dialect (0 PostgreSQL, 1 MySQL),
-- class (a subclass of Conn), connect = function(conn) -> 0 or non-zero }
function M.new_conn(spec, dsn, opts)
  local c = setmetatable({ spec = spec, C = spec.C, p = spec.prefix, dsn = dsn, opts = opts,
                           generation = 0 }, spec.class or Conn)
  c:make_handle()
  return c
end

function Conn:make_handle()
  local C, p = self.C, self.p
  local h = C[p .. "_new"]()
  if h == nil then error(self.spec.who .. ": out of memory", 0) end
  self.h = ffi.gc(h, C[p .. "_free"])
  self.buf = C[p .. "_buf"](h)
end

function Conn:connected() return self.C[self.p .. "_connected"](self.h) ~= 0 end
function Conn:error_text() return ffi.string(self.C[self.p .. "_error"](self.h)) end

-- Connects (again); the generation tells sinks to re-read their table's columns.
function Conn:open()
  self.generation = self.generation + 1
  if self.spec.connect(self) ~= 0 then return false, self:error_text() end
  return true
end

-- Drops the connection (the next write connects again).
function Conn:close()
  local old = self.h
  self:make_handle()
  self.C[self.p .. "_free"](ffi.gc(old, nil))
end

local function sql_failed(self)
  error(self.spec.who .. ": " .. ffi.string(self.C.lunnel_sql_error(self.buf)), 0)
end

function Conn:reset() self.C[self.p .. "_sql_reset"](self.h) end
function Conn:sql(s) if self.C.lunnel_sql_append(self.buf, s, #s) ~= 0 then sql_failed(self) end end
function Conn:ident(s)
  if self.C.lunnel_sql_ident(self.buf, s, #s, self.spec.dialect) ~= 0 then sql_failed(self) end
end
function Conn:value(col) if self.C[self.p .. "_value"](self.h, col) ~= 0 then sql_failed(self) end end
-- "schema.table" or "table", each part quoted.
function Conn:table_ident(t)
  local schema, name = t:match("^([^.]+)%.(.+)$")
  if schema then self:ident(schema) self:sql(".") self:ident(name) else self:ident(t) end
end
-- Ends the statement being written (or adds a whole one); all run at finish().
function Conn:statement(s)
  if s then self:sql(s) end
  self:sql(";\n")
end
function Conn:text() return ffi.string(self.C.lunnel_sql_text(self.buf)) end
function Conn:sql_len() return self.C.lunnel_sql_len(self.buf) end
-- Runs the statements written since reset(); true, or false and the server's message.
function Conn:finish()
  if self.C[self.p .. "_exec"](self.h) == 0 then return true end
  return false, self:error_text()
end
-- Runs one statement on its own.
function Conn:run(s)
  self:reset()
  self:sql(s)
  return self:finish()
end
-- Rows of a query as arrays of strings.
local len_p = ffi.new("size_t[1]")
function Conn:query(s)
  if self.C[self.p .. "_query"](self.h, s) ~= 0 then return nil, self:error_text() end
  local text = ffi.string(self.C[self.p .. "_result"](self.h, len_p), len_p[0])
  local rows = {}
  for line in text:gmatch("([^\n]*)\n") do
    local row = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do row[#row + 1] = field end
    rows[#rows + 1] = row
  end
  return rows
end

-- A per-worker pool: one connection per DSN in this Lua state (= this worker thread).
function M.pool(spec)
  local conns = {}
  return function(dsn, opts)
    local c = conns[dsn]
    if not c then c = M.new_conn(spec, dsn, opts) conns[dsn] = c end
    return c
  end
end

local Sink = {}
Sink.__index = Sink
M.Sink = Sink

local ACTION_PUT, ACTION_UPDATE, ACTION_DELETE = 1, 2, 3
local OP_PUT = 0
local TYPE_NAMES = { [1] = "INTEGER", [2] = "DOUBLE", [3] = "BOOLEAN", [4] = "STRING", [5] = "BINARY" }

-- new{...} for a dialect: d = { name, connect(dsn, opts) -> conn, ... } (see postgres.lua).
function M.new(d, opts, level)
  level = (level or 1) + 1
  local who = "lunnel.sinks." .. d.name
  if type(opts) ~= "table" then error(who .. ".new: needs an options table", level) end
  if type(opts.dsn) ~= "string" or opts.dsn == "" then error(who .. ".new: option dsn is required", level) end
  if type(opts.table) ~= "string" or opts.table == "" then error(who .. ".new: option table is required", level) end
  return setmetatable({
    d = d, who = who, dsn = opts.dsn, table = opts.table, create = opts.create == true,
    opts = opts, conn = nil, columns = nil, pk = nil,
    -- counters (specs, the script's own metrics)
    rows = 0, batches = 0, statements = 0, columns_added = 0,
  }, Sink)
end

function Sink:fail(msg)
  error(self.who .. ": " .. self.table .. ": " .. msg, 0)
end

-- The worker's connection for this DSN (shared by the sinks of one worker, made on first use
-- and made again after it was lost; then the table's columns are read again).
function Sink:connection()
  local c = self.d.connection(self.dsn, self.opts)
  if not c:connected() then
    local ok, err = c:open()
    if not ok then self:fail("cannot connect (" .. module.redact(self.dsn) .. "): " .. err) end
  end
  if self.conn_gen ~= c.generation then
    self.conn_gen, self.columns = c.generation, nil
  end
  return c
end

-- Loads the target table's columns (name -> true); false when the table does not exist.
function Sink:load_columns(c)
  local rows, err = c:query(self.d.columns_query(c, self.table))
  if not rows then self:fail("cannot read the table's columns: " .. err) end
  if #rows == 0 then
    local exists, err2 = c:query(self.d.exists_query(c, self.table))
    if not exists then self:fail("cannot check the table: " .. err2) end
    if #exists == 0 then return false end
  end
  local cols = {}
  for _, r in ipairs(rows) do cols[r[1]] = true end
  return cols
end

-- Column names as Lua strings, without making a string per cell: a name of up to 8 bytes is
-- identified exactly by (name_len, name_prefix) (record.h), cached under its hash.
local name_cache = {} -- name_hash -> { len, prefix, name }
local function col_name(col)
  local len = col.name_len
  if len <= 8 then
    local e = name_cache[col.name_hash]
    if e and e[1] == len and e[2] == col.name_prefix then return e[3] end
    local name = ffi.string(col.name, len)
    name_cache[col.name_hash] = { len, col.name_prefix, name }
    return name
  end
  return ffi.string(col.name, len)
end

-- Runs one DDL statement (own transaction). ok_codes: error texts that mean "already done".
function Sink:ddl(c, sql)
  local ok, err = c:run(sql)
  if not ok and not (self.d.ddl_done and self.d.ddl_done(err)) then
    self:fail(err .. " (in: " .. sql:sub(1, 200) .. ")")
  end
end

-- Makes sure the table and the columns the batch writes exist. types: name -> value type.
function Sink:ensure_schema(c, first, types)
  if not self.columns then
    local cols = self:load_columns(c)
    if not cols then
      if not self.create then
        self:fail("the table does not exist (set create = true to create it from the primary key)")
      end
      local pk = {}
      for i = 0, first.pk_count - 1 do
        local col = first.pk[i]
        pk[#pk + 1] = { col_name(col), TYPE_NAMES[col.value.type] or "STRING" }
      end
      self:ddl(c, self.d.create_sql(c, self.table, pk))
      cols = self:load_columns(c) or self:fail("the table is still missing after CREATE TABLE")
    end
    self.columns = cols
  end
  local missing
  for name in pairs(types) do
    if not self.columns[name] then missing = true break end
  end
  if not missing then return end
  self.columns = self:load_columns(c) or self:fail("the table disappeared") -- another worker may have added them
  for name, vt in pairs(types) do
    if not self.columns[name] and vt ~= 0 then
      self:ddl(c, self.d.add_column_sql(c, self.table, name, TYPE_NAMES[vt] or "STRING"))
      self.columns[name] = true
      self.columns_added = self.columns_added + 1
    end
  end
end

-- Reduces the batch to one net change per key: list of { kind, rec, cols } where cols maps
-- name -> column cdata (a value) or false (NULL), in first-seen key order.
local function net_changes(batch, filter, types)
  local by_key, list = {}, {}
  for _, r in batch:iter() do
    if not filter or filter(r) then
      local key = r:key() -- also checks that the view is live
      local rec = r.r
      local e = by_key[key]
      local action = rec.action
      if action == ACTION_DELETE then
        if not e then e = { rec = rec } by_key[key] = e list[#list + 1] = e end
        e.kind, e.cols = "delete", nil
      else
        if not e then
          e = { rec = rec, kind = action == ACTION_PUT and "put" or "update", cols = {} }
          by_key[key] = e
          list[#list + 1] = e
        elseif action == ACTION_PUT then
          e.kind, e.cols = "put", {}
        elseif e.kind == "delete" then
          e.kind, e.cols = "put", {} -- UpdateRow on a missing row creates it
        end
        e.rec = rec
        local cols = e.cols
        -- cells apply in wire order (as UpdateRow applies them); of several versions put
        -- in one change the newest timestamp wins
        local seen = {} -- name -> timestamp of the cell chosen in this record
        for i = 0, rec.col_count - 1 do
          local col = rec.cols + i
          local name = col_name(col)
          if col.op == OP_PUT then
            local ts = col.has_timestamp ~= 0 and col.timestamp or true
            local prev = seen[name]
            if not prev or prev == true or ts == true or ts >= prev then
              cols[name] = col
              seen[name] = ts
              if not types[name] or types[name] == 0 then types[name] = col.value.type end
            end
          else
            cols[name] = false
            seen[name] = false
            types[name] = types[name] or 0 -- no type known from a delete
          end
        end
      end
    end
  end
  return list
end

-- Appends "(v1, v2, ...)" of the primary key of rec.
local function pk_tuple(c, rec)
  c:sql("(")
  for i = 0, rec.pk_count - 1 do
    if i > 0 then c:sql(",") end
    c:value(rec.pk + i)
  end
  c:sql(")")
end

local function pk_list(c, pk)
  c:sql("(")
  for i, name in ipairs(pk) do
    if i > 1 then c:sql(",") end
    c:ident(name)
  end
  c:sql(")")
end

-- Appends "INSERT INTO t (pk..., names...) VALUES (...), ...": one tuple per net change in
-- rows, its primary key then each of names (NULL where the change does not set it).
local function insert_values(c, tbl, pk, names, rows)
  c:sql("INSERT INTO ") c:table_ident(tbl) c:sql(" (")
  for i, name in ipairs(pk) do if i > 1 then c:sql(",") end c:ident(name) end
  for _, name in ipairs(names) do c:sql(",") c:ident(name) end
  c:sql(") VALUES ")
  for i, e in ipairs(rows) do
    if i > 1 then c:sql(",") end
    c:sql("(")
    for j = 0, e.rec.pk_count - 1 do
      if j > 0 then c:sql(",") end
      c:value(e.rec.pk + j)
    end
    for _, name in ipairs(names) do
      c:sql(",")
      local v = e.cols[name]
      if v then c:value(v) else c:sql("NULL") end
    end
    c:sql(")")
  end
end

-- Applies the batch (every record, or those for which filter(r) is truthy) in one
-- transaction; returns the number of rows changed once committed. Raises on any failure.
function Sink:write_batch(batch, filter)
  local types = {}
  local list = net_changes(batch, filter, types)
  if #list == 0 then return 0 end
  local c = self:connection()
  local first = list[1].rec
  if not self.pk then
    local pk = {}
    for i = 0, first.pk_count - 1 do pk[#pk + 1] = col_name(first.pk[i]) end
    self.pk = pk
  end
  self:ensure_schema(c, first, types)
  local known = self.columns
  local d, pk = self.d, self.pk

  c:reset()
  c:statement(d.begin_sql)
  -- 1. DELETE the keys whose net change is DELETE or PUT
  local n = 0
  for _, e in ipairs(list) do
    if e.kind ~= "update" then
      if n == 0 then
        c:sql("DELETE FROM ") c:table_ident(self.table) c:sql(" WHERE ") pk_list(c, pk) c:sql(" IN (")
      else
        c:sql(",")
      end
      pk_tuple(c, e.rec)
      n = n + 1
    end
  end
  if n > 0 then c:sql(")") c:statement() end
  -- 2. INSERT the PUT rows, every column any of them has (NULL where a row lacks it)
  local put_cols, put_rows = {}, {}
  for _, e in ipairs(list) do
    if e.kind == "put" then
      put_rows[#put_rows + 1] = e
      for name, v in pairs(e.cols) do
        if known[name] and put_cols[name] == nil then put_cols[name] = true end
      end
    end
  end
  if #put_rows > 0 then
    local names = {}
    for name in pairs(put_cols) do names[#names + 1] = name end
    table.sort(names)
    if not (d.bulk_insert and d.bulk_insert(c, self.table, pk, names, put_rows)) then
      insert_values(c, self.table, pk, names, put_rows)
      c:statement()
    end
  end
  -- 3. UPDATE rows, grouped by their set of columns
  local groups, order = {}, {}
  for _, e in ipairs(list) do
    if e.kind == "update" then
      local names, any_value = {}, false
      for name, v in pairs(e.cols) do
        if known[name] then
          names[#names + 1] = name
          if v then any_value = true end
        end
      end
      if #names > 0 then
        table.sort(names)
        local sig = (any_value and "u:" or "n:") .. table.concat(names, "\0")
        local g = groups[sig]
        if not g then
          g = { names = names, upsert = any_value, rows = {} }
          groups[sig] = g
          order[#order + 1] = g
        end
        g.rows[#g.rows + 1] = e
      end
    end
  end
  for _, g in ipairs(order) do
    if g.upsert then
      insert_values(c, self.table, pk, g.names, g.rows)
      d.upsert_tail(c, pk, g.names)
      c:statement()
    else
      -- only deletes: set NULL where the row exists (UpdateRow deleting cells of a missing
      -- row creates nothing)
      c:sql("UPDATE ") c:table_ident(self.table) c:sql(" SET ")
      for i, name in ipairs(g.names) do
        if i > 1 then c:sql(",") end
        c:ident(name) c:sql("=NULL")
      end
      c:sql(" WHERE ") pk_list(c, pk) c:sql(" IN (")
      for i, e in ipairs(g.rows) do
        if i > 1 then c:sql(",") end
        pk_tuple(c, e.rec)
      end
      c:sql(")")
      c:statement()
    end
  end
  c:statement(d.commit_sql)
  local ok, err = c:finish()
  if not ok then
    self:fail(err)
  end
  self.rows = self.rows + #list
  self.batches = self.batches + 1
  return #list
end

-- Closes the worker's connection for this DSN (the next write connects again).
function Sink:close()
  self.d.connection(self.dsn, self.opts):close()
end

return M
