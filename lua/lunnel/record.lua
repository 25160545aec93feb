-- lunnel.record: the record view as Lua sees it (DESIGN.md "Record view"). The ONE module that
-- holds the ffi.cdef and ffi.metatype of runtime/include/lunnel/record.h.
--
-- Loaded once per lua_State, never again: the module table is kept in the Lua registry
-- (debug.getregistry()["lunnel.record"]), which neither hot reload nor busted's insulation
-- (it re-requires modules after clearing package.loaded) touches, so ffi.cdef / ffi.metatype
-- run exactly once per state. The cdef is additionally guarded with pcall(ffi.typeof, ...).
--
-- C functions: ffi.C when running inside the `lunnel` binary (it contains the runtime and
-- exports its LUNNEL_API functions, as liblunnel.so does), else ffi.load(LUNNEL_LIB or <repo>/build/liblunnel.so or "lunnel"). The ABI
-- version is checked at load; spec/lua/record_abi_spec.lua compares every size and offset
-- with lunnel_record_abi_layout().
--
-- HOW THE LUA HOST HANDS A BATCH TO LUA (contract with runtime/src/lua):
--   C (worker thread): lunnel_pb_decode_batch(arena, data, size, ranges, n, LUNNEL_PB_STRICT,
--                      &batch, &err)  -- batch->generation = arena generation now
--                      push batch as a light userdata; call the Lua runner
--   Lua:               local record = require("lunnel.record")
--                      local b = record.wrap(batch_lightuserdata)   -- a lunnel_batch_ref
--                      (a cdata `const lunnel_batch *` works too; extra arguments ignored)
--                      handlers.process(ctx, b)
--   C, after the process() pcall returned (success OR error): lunnel_arena_reset(arena)
--     This bumps *lunnel_arena_live(arena): every handle made from that batch (batch, records,
--     pk proxies) now raises "stale record view" on use instead of reading reused memory. The
--     response bytes (`data`) may be freed only after that reset. The arena itself must
--     outlive the lua_State (lunnel_arena_free after lua_close): handles read its counter.
--
-- Lua API (views valid only during the process call):
--   #batch, batch[i] (1-based), for i, r in batch:iter() do ... end
--   r.action ("PUT"|"UPDATE"|"DELETE"), r.pk.<name>, r:pk(i) -> name, value,
--   r:key() canonical pk string, r:get(name [, "int64"]), r:type(name), r:columns()
--   -> iterator of name, value, op, timestamp; r:old(name), r.seq ({epoch, timestamp,
--   row_index} or nil), r.timestamp (sequence timestamp or nil), r:totable(), r:tojson(),
--   tostring(r). Extras that never copy: r:len(name) (bytes of a STRING/BINARY),
--   r:equals(name, s) (compares a STRING/BINARY with a Lua string), r:has(name); also
--   #r.pk, r.delete_marker (boolean), r.index (1-based position in its batch).
--   INTEGER -> Lua number when |v| <= 2^53, else int64_t cdata; get(name, "int64") always
--   cdata. STRING/BINARY -> Lua string (ffi.string copy). BOOLEAN -> boolean. INF_MIN,
--   INF_MAX, NULL, AUTO_INCREMENT -> the sentinels record.INF_MIN etc.
local REG_KEY = "lunnel.record"
local registry = debug.getregistry()
if registry[REG_KEY] then return registry[REG_KEY] end

local ffi = require("ffi")

local M = {}
M.ABI_VERSION = 1

if not pcall(ffi.typeof, "lunnel_record") then
  ffi.cdef [[
typedef struct lunnel_value {
  uint8_t type; uint8_t pad_[3]; uint32_t len;
  union { int64_t i; double d; const uint8_t *ptr; } u;
} lunnel_value;
typedef struct lunnel_column {
  const uint8_t *name; uint32_t name_len; uint32_t name_hash; uint64_t name_prefix; int64_t timestamp;
  uint8_t op; uint8_t has_timestamp; uint8_t pad_[6]; lunnel_value value;
} lunnel_column;
typedef struct lunnel_record {
  const lunnel_column *pk; const lunnel_column *cols; const lunnel_column *old;
  uint32_t pk_count; uint32_t col_count; uint32_t old_count;
  uint8_t action; uint8_t delete_marker; uint8_t has_seq; uint8_t has_old;
  int64_t seq_timestamp; int32_t seq_epoch; int32_t seq_row_index;
  uint32_t offset; uint32_t size;
} lunnel_record;
typedef struct lunnel_batch {
  const lunnel_record *records; uint32_t count; uint32_t generation;
  const volatile uint32_t *live_generation; const uint8_t *data; uint64_t size;
} lunnel_batch;
typedef struct lunnel_batch_ref {
  const lunnel_batch *b; const volatile uint32_t *live; uint32_t gen; uint32_t pad_;
} lunnel_batch_ref;
typedef struct lunnel_record_ref {
  const lunnel_record *r; const volatile uint32_t *live; uint32_t gen; uint32_t index;
} lunnel_record_ref;
/* Lua-only: what r.pk returns (same layout as lunnel_record_ref, its own metatable). */
typedef struct lunnel_pk_ref {
  const lunnel_record *r; const volatile uint32_t *live; uint32_t gen; uint32_t index;
} lunnel_pk_ref;
/* Lua-only: the state of one r:columns() loop (a cdata, not a closure: LuaJIT compiles its
 * allocation, while creating a closure per record would abort the trace). */
typedef struct lunnel_column_cursor {
  const lunnel_record *r; const volatile uint32_t *live; uint32_t gen; int32_t pos;
} lunnel_column_cursor;
typedef struct lunnel_arena lunnel_arena;
lunnel_arena *lunnel_arena_new(void);
void lunnel_arena_free(lunnel_arena *a);
void lunnel_arena_reset(lunnel_arena *a);
uint32_t lunnel_arena_generation(const lunnel_arena *a);
const volatile uint32_t *lunnel_arena_live(const lunnel_arena *a);
uint32_t lunnel_record_abi_version(void);
int64_t lunnel_record_abi_layout(const char *type, const char *field);
uint32_t lunnel_record_name_hash(const void *name, size_t len);
uint64_t lunnel_record_name_prefix(const void *name, size_t len);
size_t lunnel_record_tojson(const lunnel_record *r, char *buf, size_t cap);
size_t lunnel_record_key(const lunnel_record *r, char *buf, size_t cap);
]]
end
-- memcmp may already be declared by another module: redeclaring would raise.
pcall(ffi.cdef, "int memcmp(const void *s1, const void *s2, size_t n);")

-- ---- the C library ----------------------------------------------------------------------
local function find_lib()
  if pcall(function() return ffi.C.lunnel_record_abi_version end) then return ffi.C, "ffi.C" end
  local tried = {}
  local candidates = {}
  local env = os.getenv("LUNNEL_LIB")
  if env and env ~= "" then
    -- named explicitly: use it or fail, never fall back to another build's library (a
    -- sanitizer run would silently test the uninstrumented one)
    local ok, lib = pcall(ffi.load, env)
    if ok then return lib, env end
    error("lunnel.record: cannot load LUNNEL_LIB=" .. env .. ": " .. tostring(lib), 0)
  end
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) == "@" then
    local path = src:sub(2)
    local dir = path:match("^(.*)/lua/lunnel/[^/]*$")
    if not dir and path:match("^lua/lunnel/[^/]*$") then dir = "." end -- relative (busted lpath)
    if dir then candidates[#candidates + 1] = dir .. "/build/liblunnel.so" end
  end
  candidates[#candidates + 1] = "lunnel"
  for _, path in ipairs(candidates) do
    local ok, lib = pcall(ffi.load, path)
    if ok then return lib, path end
    tried[#tried + 1] = path .. ": " .. tostring(lib)
  end
  error("lunnel.record: cannot find liblunnel (set LUNNEL_LIB); tried:\n  "
        .. table.concat(tried, "\n  "), 0)
end
local C, libname = find_lib()
M.C, M.libname = C, libname

local abi = tonumber(C.lunnel_record_abi_version())
if abi ~= M.ABI_VERSION then
  error(("lunnel.record: ABI mismatch: %s has record ABI %d, lua/lunnel/record.lua expects %d")
        :format(libname, abi, M.ABI_VERSION), 0)
end

-- ---- constants ---------------------------------------------------------------------------
local VT_NONE, VT_INTEGER, VT_DOUBLE, VT_BOOLEAN, VT_STRING, VT_BINARY = 0, 1, 2, 3, 4, 5
local VT_INF_MIN, VT_INF_MAX, VT_NULL, VT_AUTO_INCREMENT = 6, 7, 8, 9
local TYPE_NAMES = { [0] = nil, "INTEGER", "DOUBLE", "BOOLEAN", "STRING", "BINARY", "INF_MIN",
                     "INF_MAX", "NULL", "AUTO_INCREMENT" }
local OP_NAMES = { [0] = "PUT", "DELETE_ONE_VERSION", "DELETE_ALL_VERSIONS", "INCREMENT" }
local ACTION_NAMES = { [0] = "NONE", "PUT", "UPDATE", "DELETE" }
M.TYPE_NAMES, M.OP_NAMES, M.ACTION_NAMES = TYPE_NAMES, OP_NAMES, ACTION_NAMES

local function sentinel(name)
  return setmetatable({}, { __tostring = function() return name end,
                            __metatable = "lunnel." .. name })
end
M.INF_MIN, M.INF_MAX = sentinel("INF_MIN"), sentinel("INF_MAX")
M.NULL, M.AUTO_INCREMENT = sentinel("NULL"), sentinel("AUTO_INCREMENT")
local SENTINELS = { [VT_INF_MIN] = M.INF_MIN, [VT_INF_MAX] = M.INF_MAX, [VT_NULL] = M.NULL,
                    [VT_AUTO_INCREMENT] = M.AUTO_INCREMENT }

local batch_ref_t = ffi.typeof("lunnel_batch_ref")
local record_ref_t = ffi.typeof("lunnel_record_ref")
local pk_ref_t = ffi.typeof("lunnel_pk_ref")
local cursor_t = ffi.typeof("lunnel_column_cursor")
local batch_ptr_t = ffi.typeof("const lunnel_batch *")
local int64_t = ffi.typeof("int64_t")
local ffi_string, memcmp, tonumber, error, type = ffi.string, ffi.C.memcmp, tonumber, error, type
local MAX_EXACT = 9007199254740992 -- 2^53

-- ---- staleness --------------------------------------------------------------------------
-- level: stack level of the user's code relative to stale() (stale < checker < accessor < user).
local function stale(what, level)
  error("lunnel: stale " .. what .. " view: records are valid only during the process() "
        .. "call that received them (copy what you need: r:totable(), r:tojson(), r:get())",
        level or 4)
end

local function rec(ref)
  if ref.live[0] ~= ref.gen then stale("record") end
  return ref.r
end

-- The same for computed fields (__index tail-calls them, so the user is at the same level).
local function recf(ref)
  if ref.live[0] ~= ref.gen then stale("record", 4) end
  return ref.r
end

-- ---- values -----------------------------------------------------------------------------
local function value(v, as_int64)
  local t = v.type
  if t == VT_INTEGER then
    local i = v.u.i
    if as_int64 then return int64_t(i) end
    if i <= MAX_EXACT and i >= -MAX_EXACT then return tonumber(i) end
    return int64_t(i)
  elseif t == VT_STRING or t == VT_BINARY then
    return ffi_string(v.u.ptr, v.len)
  elseif t == VT_DOUBLE then
    return v.u.d
  elseif t == VT_BOOLEAN then
    return v.u.i ~= 0
  elseif t == VT_NONE then
    return nil
  end
  return SENTINELS[t]
end
M.value = value

-- Column-name lookup without copying names or calling C on the hot path: names of up to 8
-- bytes are identified exactly by (length, 8-byte prefix); longer ones by length, prefix and
-- hash, confirmed with memcmp. Per-name keys are cached per Lua string (bounded).
local HASH, PREFIX, key_count = {}, {}, 0
local function name_keys(name)
  if key_count > 100000 then HASH, PREFIX, key_count = {}, {}, 0 end
  local h = tonumber(C.lunnel_record_name_hash(name, #name))
  local p = C.lunnel_record_name_prefix(name, #name)
  HASH[name], PREFIX[name] = h, p
  key_count = key_count + 1
  return p
end

local function same(c, name, len, pre)
  if c.name_len ~= len or c.name_prefix ~= pre then return false end
  if len <= 8 then return true end
  return c.name_hash == HASH[name] and memcmp(c.name, name, len) == 0
end

-- Position hints: records of one table almost always carry a column at the same index, so
-- the last index a name was found at is tried first. That keeps the common lookup free of
-- loops, which matters to the JIT: a trace may not leave a loop early, so a scanning loop
-- with an early return would be blacklisted and force the caller into the interpreter.
local HINT_COLS, HINT_PK, HINT_OLD = {}, {}, {}

local function scan(cols, n, name, len, pre, hints)
  for i = 0, n - 1 do
    local c = cols[i]
    if same(c, name, len, pre) then
      hints[name] = i
      return c
    end
  end
  return nil
end

local function find(cols, n, name, hints)
  if type(name) ~= "string" then error("lunnel: column name must be a string, got " .. type(name), 3) end
  local len = #name
  local pre = PREFIX[name] or name_keys(name)
  local i = hints[name]
  if i ~= nil and i < n then
    local c = cols[i]
    if same(c, name, len, pre) then return c end
  end
  return scan(cols, n, name, len, pre, hints)
end

-- A row may carry one name twice (an UPDATE that puts a new version and deletes an old one):
-- readers want the cell with a value. Rare, so this only runs when the first match has none.
local function find_valued(cols, n, name, hints)
  local c = find(cols, n, name, hints)
  if c == nil or c.value.type ~= VT_NONE then return c end
  local len, pre = #name, PREFIX[name]
  for i = 0, n - 1 do
    local d = cols[i]
    if d.value.type ~= VT_NONE and same(d, name, len, pre) then return d end
  end
  return c
end

-- ---- record methods ---------------------------------------------------------------------
local R = {}    -- methods
local RF = {}   -- computed fields

-- get dispatches on the type itself instead of calling value(): with both ints and strings
-- read through one shared helper, LuaJIT aborted the loop trace ("loop unroll limit") and a
-- 10-column loop fell back to the interpreter (60x slower). Keep this shape.
function R.get(ref, name, as)
  local r = rec(ref)
  local c = find_valued(r.cols, r.col_count, name, HINT_COLS)
  if c == nil then return nil end
  local v = c.value
  local t = v.type
  if t == VT_STRING then return ffi_string(v.u.ptr, v.len) end
  if t == VT_INTEGER then
    local i = v.u.i
    if as == nil and i <= MAX_EXACT and i >= -MAX_EXACT then return tonumber(i) end
    return int64_t(i)
  end
  if t == VT_DOUBLE then return v.u.d end
  if t == VT_BOOLEAN then return v.u.i ~= 0 end
  return value(v)
end

function R.has(ref, name)
  local r = rec(ref)
  local c = find_valued(r.cols, r.col_count, name, HINT_COLS)
  return c ~= nil and c.value.type ~= VT_NONE
end

function R.type(ref, name)
  local r = rec(ref)
  local c = find_valued(r.cols, r.col_count, name, HINT_COLS) or find(r.pk, r.pk_count, name, HINT_PK)
  if c == nil then return nil end
  return TYPE_NAMES[c.value.type]
end

function R.len(ref, name)
  local r = rec(ref)
  local c = find_valued(r.cols, r.col_count, name, HINT_COLS)
  if c == nil then return nil end
  local t = c.value.type
  if t == VT_STRING or t == VT_BINARY then return c.value.len end
  return nil
end

function R.equals(ref, name, s)
  local r = rec(ref)
  local c = find_valued(r.cols, r.col_count, name, HINT_COLS)
  if c == nil then return false end
  local t = c.value.type
  if t ~= VT_STRING and t ~= VT_BINARY then return false end
  local n = c.value.len
  return n == #s and memcmp(c.value.u.ptr, s, n) == 0
end

function R.old(ref, name, as)
  local r = rec(ref)
  if r.has_old == 0 then return nil end
  local c = find_valued(r.old, r.old_count, name, HINT_OLD)
  if c == nil then return nil end
  local v = c.value
  local t = v.type
  if t == VT_STRING then return ffi_string(v.u.ptr, v.len) end -- (see R.get on the shape)
  if t == VT_INTEGER then
    local i = v.u.i
    if as == nil and i <= MAX_EXACT and i >= -MAX_EXACT then return tonumber(i) end
    return int64_t(i)
  end
  return value(v)
end

-- r:columns(): name, value, op, timestamp of each cell in wire order. Shaped for the JIT like
-- R.get: a cdata cursor instead of a closure, values read by type inline.
local function columns_next(cur)
  if cur.live[0] ~= cur.gen then stale("record", 3) end
  local r = cur.r
  local i = cur.pos + 1
  if i >= r.col_count then return nil end
  cur.pos = i
  local c = r.cols[i]
  local v = c.value
  local t = v.type
  local val
  if t == VT_STRING then
    val = ffi_string(v.u.ptr, v.len)
  elseif t == VT_INTEGER then
    local n = v.u.i
    if n <= MAX_EXACT and n >= -MAX_EXACT then val = tonumber(n) else val = int64_t(n) end
  elseif t == VT_DOUBLE then
    val = v.u.d
  else
    val = value(v)
  end
  local ts = nil
  if c.has_timestamp ~= 0 then ts = tonumber(c.timestamp) end
  return ffi_string(c.name, c.name_len), val, OP_NAMES[c.op], ts
end

function R.columns(ref)
  local r = rec(ref)
  return columns_next, cursor_t(r, ref.live, ref.gen, -1), nil
end

-- Reusable output buffer for C writers (one per lua_State: this module is per state).
local buf_size = 4096
local buf = ffi.new("char[?]", buf_size)
local function c_string(fn, r)
  local n = tonumber(fn(r, buf, buf_size))
  if n >= buf_size then
    buf_size = n + 1
    while buf_size % 16 ~= 0 do buf_size = buf_size + 1 end
    buf = ffi.new("char[?]", buf_size)
    n = tonumber(fn(r, buf, buf_size))
  end
  return ffi_string(buf, n)
end

function R.key(ref) return c_string(C.lunnel_record_key, rec(ref)) end
function R.tojson(ref) return c_string(C.lunnel_record_tojson, rec(ref)) end

local function cols_table(cols, n, deleted)
  local t = {}
  for i = 0, n - 1 do
    local c = cols[i]
    if c.value.type ~= VT_NONE then
      t[ffi_string(c.name, c.name_len)] = value(c.value)
    elseif deleted then
      deleted[#deleted + 1] = ffi_string(c.name, c.name_len)
    end
  end
  return t
end

local function seq_table(r)
  if r.has_seq == 0 then return nil end
  return { epoch = r.seq_epoch, timestamp = tonumber(r.seq_timestamp), row_index = r.seq_row_index }
end

function R.totable(ref)
  local r = rec(ref)
  local deleted = {}
  local t = {
    action = ACTION_NAMES[r.action],
    pk = cols_table(r.pk, r.pk_count),
    cols = cols_table(r.cols, r.col_count, deleted),
    seq = seq_table(r),
  }
  if #deleted > 0 then t.deleted = deleted end
  if r.has_old ~= 0 then t.old = cols_table(r.old, r.old_count) end
  if r.delete_marker ~= 0 then t.delete_marker = true end
  return t
end

function RF.action(ref) return ACTION_NAMES[recf(ref).action] end
function RF.pk(ref) recf(ref); return pk_ref_t(ref.r, ref.live, ref.gen, ref.index) end
function RF.seq(ref) return seq_table(recf(ref)) end
function RF.timestamp(ref)
  local r = recf(ref)
  if r.has_seq == 0 then return nil end
  return tonumber(r.seq_timestamp)
end
function RF.delete_marker(ref) return recf(ref).delete_marker ~= 0 end
function RF.index(ref) return ref.index end

-- tostring(r) is for terminals and logs: it never writes raw control or binary bytes.
-- Strings: printable ASCII and valid UTF-8 as they are, '"' '\\' and every other byte as an
-- escape (\n, \t, \r, \xHH). BINARY: b"..." with every byte outside printable ASCII as \xHH.
local SHORT_ESC = { [10] = "\\n", [13] = "\\r", [9] = "\\t", [34] = '\\"', [92] = "\\\\" }

local function utf8_len(s, i)
  local c = s:byte(i)
  local n = (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
            or (c >= 0xF0 and c <= 0xF4) and 4 or 0
  if n == 0 or i + n - 1 > #s then return 0 end
  for k = i + 1, i + n - 1 do
    local b = s:byte(k)
    if b < 0x80 or b > 0xBF then return 0 end
  end
  local c2 = s:byte(i + 1)
  if (c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F) or (c == 0xF0 and c2 < 0x90)
     or (c == 0xF4 and c2 > 0x8F) then
    return 0
  end
  return n
end

local function escape(s, binary)
  if not s:find('[%z\1-\31"\\\127-\255]') then return '"' .. s .. '"' end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local adv = 1
    if c >= 32 and c < 127 and c ~= 34 and c ~= 92 then
      out[#out + 1] = string.char(c)
    elseif SHORT_ESC[c] then
      out[#out + 1] = SHORT_ESC[c]
    elseif c >= 0x80 and not binary and utf8_len(s, i) > 0 then
      adv = utf8_len(s, i)
      out[#out + 1] = s:sub(i, i + adv - 1)
    else
      out[#out + 1] = ("\\x%02X"):format(c)
    end
    i = i + adv
  end
  return '"' .. table.concat(out) .. '"'
end

local function quote_value(v)
  local t = v.type
  if t == VT_STRING then return escape(ffi_string(v.u.ptr, v.len), false) end
  if t == VT_BINARY then return "b" .. escape(ffi_string(v.u.ptr, v.len), true) end
  return tostring(value(v))
end

local function record_tostring(ref)
  if ref.live[0] ~= ref.gen then return "lunnel.record<stale>" end
  local r = ref.r
  local parts = { ACTION_NAMES[r.action] }
  local pk = {}
  for i = 0, r.pk_count - 1 do
    local c = r.pk[i]
    pk[#pk + 1] = ffi_string(c.name, c.name_len) .. "=" .. quote_value(c.value)
  end
  parts[#parts + 1] = "pk(" .. table.concat(pk, ", ") .. ")"
  for i = 0, r.col_count - 1 do
    local c = r.cols[i]
    local s = ffi_string(c.name, c.name_len)
    if c.value.type ~= VT_NONE then s = s .. "=" .. quote_value(c.value) end
    if c.op ~= 0 then s = s .. ":" .. OP_NAMES[c.op] end
    if c.has_timestamp ~= 0 then s = s .. "@" .. tostring(tonumber(c.timestamp)) end
    parts[#parts + 1] = s
  end
  if r.has_seq ~= 0 then
    parts[#parts + 1] = ("seq(%d,%d,%d)"):format(r.seq_epoch, tonumber(r.seq_timestamp), r.seq_row_index)
  end
  return table.concat(parts, " ")
end

ffi.metatype(record_ref_t, {
  __index = function(ref, k)
    local m = R[k]
    if m ~= nil then return m end
    local f = RF[k]
    if f ~= nil then return f(ref) end
    return nil
  end,
  __tostring = record_tostring,
})

-- r.pk: r.pk.<name> (value by name) and r:pk(i) (name, value of the i-th key column).
ffi.metatype(pk_ref_t, {
  __index = function(p, name)
    if p.live[0] ~= p.gen then stale("record", 3) end
    local r = p.r
    local c = find(r.pk, r.pk_count, name, HINT_PK)
    if c == nil then return nil end
    local v = c.value
    local t = v.type
    if t == VT_STRING then return ffi_string(v.u.ptr, v.len) end -- (see R.get on the shape)
    if t == VT_INTEGER then
      local i = v.u.i
      if i <= MAX_EXACT and i >= -MAX_EXACT then return tonumber(i) end
      return int64_t(i)
    end
    return value(v)
  end,
  __call = function(p, _, i)
    if p.live[0] ~= p.gen then stale("record", 3) end
    local r = p.r
    if type(i) ~= "number" then error("lunnel: r:pk(i) needs a column index", 2) end
    if i < 1 or i > r.pk_count then return nil end
    local c = r.pk[i - 1]
    return ffi_string(c.name, c.name_len), value(c.value)
  end,
  __len = function(p)
    if p.live[0] ~= p.gen then stale("record", 3) end
    return p.r.pk_count
  end,
})

-- ---- batch ------------------------------------------------------------------------------
local function bat(b)
  if b.live[0] ~= b.gen then stale("batch") end
  return b.b
end

local B = {}

local function iter_next(b, i)
  local bb = bat(b)
  if i >= bb.count then return nil end
  return i + 1, record_ref_t(bb.records + i, b.live, b.gen, i + 1)
end

function B.iter(b)
  bat(b)
  return iter_next, b, 0
end

ffi.metatype(batch_ref_t, {
  __len = function(b) return bat(b).count end,
  __index = function(b, k)
    if type(k) == "number" then
      local bb = bat(b)
      if k < 1 or k > bb.count or k ~= k - k % 1 then return nil end
      return record_ref_t(bb.records + (k - 1), b.live, b.gen, k)
    end
    return B[k]
  end,
  __tostring = function(b)
    if b.live[0] ~= b.gen then return "lunnel.batch<stale>" end
    return ("lunnel.batch<%d records>"):format(b.b.count)
  end,
})

-- Wraps a decoded C batch (light userdata or cdata `const lunnel_batch *`) into the Lua batch
-- handle. The handle is valid until the owning arena is reset.
function M.wrap(ptr)
  local b = ffi.cast(batch_ptr_t, ptr)
  if b == nil then error("lunnel.record.wrap: NULL batch", 2) end
  return batch_ref_t(b, b.live_generation, b.generation, 0)
end

-- A standalone record handle (testing): record pointer + the arena counter it belongs to.
function M.wrap_record(rptr, live, gen, index)
  return record_ref_t(rptr, live, gen, index or 0)
end

function M.is_record(x) return ffi.istype(record_ref_t, x) end
function M.is_batch(x) return ffi.istype(batch_ref_t, x) end

-- For the layout spec.
function M.layout(typ, field)
  return tonumber(C.lunnel_record_abi_layout(typ, field or ""))
end

registry[REG_KEY] = M
return M
