-- lunnel.testing: build records and run scripts in busted specs, offline, with the very same
-- structs the runtime hands to scripts: every record is ENCODED as PlainBuffer by lunnel's C
-- writer and DECODED by lunnel's C decoder (liblunnel.so), exactly like a ReadRecords batch.
--
--   local T = require("lunnel.testing")
--   local r = T.put{ pk = {{"id", 1}, {"k", "a"}}, cols = {name = "x", n = 3} }
--   local u = T.update{ pk = {{"id", 1}}, cols = {name = "y"}, delete = {"n"},
--                       old = {name = "x"}, seq = {epoch = 0, timestamp = 1700000000000000, row_index = 0} }
--   local d = T.delete{ pk = {{"id", 1}} }
--   local script = T.load("transform.lua", { custom = {sink = "/tmp/x"} })  -- runs open(ctx)
--   script:process{ r, u, d }          -- one batch; views go stale when process returns
--   assert.same({...}, script.ctx.state)
--   script:shutdown()
--
-- Values: Lua integers (|v| < 2^63) -> INTEGER, other numbers -> DOUBLE, T.double(x) forces
-- DOUBLE, int64_t cdata -> INTEGER, strings -> STRING, T.binary(s) -> BINARY, booleans ->
-- BOOLEAN. cols: a map name -> value (encoded in sorted name order) or a list of
-- {name, value, op = "PUT"|"DELETE_ONE_VERSION"|"DELETE_ALL_VERSIONS", ts = ms}.
-- `delete = {names}` adds DELETE_ALL_VERSIONS cells. seq = {epoch, timestamp, row_index} adds
-- the stream extension (default: one with increasing row_index; seq = false: none).
--
-- Fake ctx (T.ctx(opts)): tunnel_id, client_id, channel_id, is_stream, trace_id, next_token,
-- record_count, custom, state, log.{trace,debug,info,warn,error}(msg, fields) recorded in
-- ctx.logs, ctx:commit() counted in ctx.commits.
local ffi = require("ffi")
local record = require("lunnel.record")
local C = record.C

local REG_KEY = "lunnel.testing.cdef"
if not pcall(ffi.typeof, "lunnel_pb_writer") then
  ffi.cdef [[
typedef struct lunnel_codec_error {
  int code; int32_t record_index; uint64_t offset; char message[200];
} lunnel_codec_error;
typedef struct lunnel_record_range {
  uint32_t offset; uint32_t len; uint32_t origin_offset; uint32_t origin_len;
  uint8_t action; uint8_t has_origin; uint8_t pad_[6];
} lunnel_record_range;
typedef struct lunnel_pb_writer {
  uint8_t *buf; size_t len; size_t cap; int error;
  uint8_t row_crc; uint8_t state; uint8_t marker; uint8_t pad_;
} lunnel_pb_writer;
void lunnel_pb_writer_init(lunnel_pb_writer *w);
void lunnel_pb_writer_free(lunnel_pb_writer *w);
void lunnel_pb_writer_reset(lunnel_pb_writer *w);
int lunnel_pb_write_header(lunnel_pb_writer *w);
int lunnel_pb_begin_row(lunnel_pb_writer *w);
int lunnel_pb_write_pk(lunnel_pb_writer *w, const void *name, size_t name_len, const lunnel_value *v);
int lunnel_pb_write_cell(lunnel_pb_writer *w, const void *name, size_t name_len,
                         const lunnel_value *v, int op, int has_ts, int64_t ts);
int lunnel_pb_write_delete_marker(lunnel_pb_writer *w);
int lunnel_pb_write_seq(lunnel_pb_writer *w, int32_t epoch, int64_t ts, int32_t row_index);
int lunnel_pb_end_row(lunnel_pb_writer *w);
int lunnel_pb_decode_batch(lunnel_arena *arena, const uint8_t *data, size_t size,
                           const lunnel_record_range *ranges, uint32_t n, unsigned flags,
                           const lunnel_batch **batch_out, lunnel_codec_error *err);
const char *lunnel_codec_strerror(int code);
]]
end
debug.getregistry()[REG_KEY] = true

local M = {}

local ACTIONS = { PUT = 1, UPDATE = 2, DELETE = 3 }
local OPS = { PUT = 0, DELETE_ONE_VERSION = 1, DELETE_ALL_VERSIONS = 2, INCREMENT = 3 }
local int64_t = ffi.typeof("int64_t")
local value_t = ffi.typeof("lunnel_value")

-- Markers for values whose Lua type is ambiguous.
local DOUBLE_MT, BINARY_MT = {}, {}
function M.double(x) return setmetatable({ v = x }, DOUBLE_MT) end
function M.binary(s) return setmetatable({ v = s }, BINARY_MT) end
M.INF_MIN, M.INF_MAX = record.INF_MIN, record.INF_MAX

-- Fills a lunnel_value; returns it plus the Lua string it points into (keep it alive).
local function to_value(x, where)
  local v = value_t()
  local tx = type(x)
  if tx == "number" then
    if x == math.floor(x) and x > -2 ^ 63 and x < 2 ^ 63 then
      v.type, v.u.i = 1, x
    else
      v.type, v.u.d = 2, x
    end
  elseif tx == "cdata" and ffi.istype(int64_t, x) then
    v.type, v.u.i = 1, x
  elseif tx == "cdata" and ffi.istype("uint64_t", x) then
    v.type, v.u.i = 1, ffi.cast("int64_t", x)
  elseif tx == "string" then
    v.type, v.len, v.u.ptr = 4, #x, ffi.cast("const uint8_t *", x)
    return v, x
  elseif tx == "boolean" then
    v.type, v.u.i = 3, x and 1 or 0
  elseif tx == "table" and getmetatable(x) == DOUBLE_MT then
    v.type, v.u.d = 2, x.v
  elseif tx == "table" and getmetatable(x) == BINARY_MT then
    v.type, v.len, v.u.ptr = 5, #x.v, ffi.cast("const uint8_t *", x.v)
    return v, x.v
  elseif x == record.INF_MIN then
    v.type = 6
  elseif x == record.INF_MAX then
    v.type = 7
  else
    error(("lunnel.testing: %s: unsupported value %s (%s)"):format(where, tostring(x), tx), 4)
  end
  return v, nil
end

local function check(rc, w, what)
  if rc ~= 0 then
    error(("lunnel.testing: encoding %s failed: %s"):format(what,
          ffi.string(C.lunnel_codec_strerror(rc))), 4)
  end
end

-- Normalises cols into a list of {name, value, op, ts}.
local function col_list(cols, delete)
  local list = {}
  if cols then
    if cols[1] ~= nil then
      for _, c in ipairs(cols) do
        list[#list + 1] = { c[1], c[2], c.op or c[3] or "PUT", c.ts or c[4] }
      end
    else
      local names = {}
      for k in pairs(cols) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do list[#list + 1] = { k, cols[k], "PUT" } end
    end
  end
  for _, name in ipairs(delete or {}) do list[#list + 1] = { name, nil, "DELETE_ALL_VERSIONS" } end
  return list
end

local function write_row(w, spec, cols, with_marker, seq)
  local keep = {}
  check(C.lunnel_pb_write_header(w), w, "header")
  check(C.lunnel_pb_begin_row(w), w, "row")
  for i, p in ipairs(spec.pk or {}) do
    local name, val = p[1], p[2]
    if type(name) ~= "string" then error("lunnel.testing: pk[" .. i .. "] must be {name, value}", 4) end
    local v, s = to_value(val, "pk " .. name)
    keep[#keep + 1] = s
    check(C.lunnel_pb_write_pk(w, name, #name, v), w, "pk " .. name)
  end
  for _, c in ipairs(cols) do
    local name, val, op, ts = c[1], c[2], c[3], c[4]
    local opn = OPS[op]
    if not opn then error("lunnel.testing: column " .. name .. ": unknown op " .. tostring(op), 4) end
    local v = nil
    if val ~= nil then
      local s
      v, s = to_value(val, "column " .. name)
      keep[#keep + 1] = s
    end
    check(C.lunnel_pb_write_cell(w, name, #name, v, opn, ts and 1 or 0, ts or 0), w, "column " .. name)
  end
  if with_marker then check(C.lunnel_pb_write_delete_marker(w), w, "delete marker") end
  if seq then
    check(C.lunnel_pb_write_seq(w, seq.epoch or 0, seq.timestamp or 0, seq.row_index or 0), w, "seq")
  end
  check(C.lunnel_pb_end_row(w), w, "row end")
end

local specs = setmetatable({}, { __mode = "k" }) -- record handle -> spec (for T.batch)
local arena_of = setmetatable({}, { __mode = "k" }) -- batch handle -> arena
local anchors = {} -- arenas and byte buffers live as long as the test process (handles read them)
local row_counter = 0

local function make_spec(action, t)
  if type(t) ~= "table" then error("lunnel.testing: " .. action:lower() .. "{...} needs a table", 3) end
  if type(t.pk) ~= "table" or #t.pk == 0 then
    error("lunnel.testing: " .. action:lower() .. "{...} needs pk = {{name, value}, ...}", 3)
  end
  local s = { action = action, pk = t.pk, cols = col_list(t.cols, t.delete), old = t.old, seq = t.seq }
  if action == "DELETE" then s.cols = {} end
  return s
end

-- Encodes specs into one buffer laid out like a ReadRecords response: the bytes (a Lua
-- string) and one lunnel_record_range per spec. A spec with `raw` (bytes that did not decode,
-- from a dead-letter line) is copied as it is, as a PUT.
local function encode(list)
  local w = ffi.gc(ffi.new("lunnel_pb_writer"), C.lunnel_pb_writer_free)
  C.lunnel_pb_writer_init(w)
  local n = #list
  local ranges = ffi.new("lunnel_record_range[?]", math.max(n, 1))
  local raw_parts = {} -- offset -> raw bytes spliced in after encoding
  for i, s in ipairs(list) do
    local rg = ranges[i - 1]
    rg.offset = w.len
    if s.raw then
      -- reserve the room with a placeholder row-less header, then splice the raw bytes in
      raw_parts[#raw_parts + 1] = { off = tonumber(w.len), bytes = s.raw }
      rg.len = #s.raw
      rg.action = ACTIONS.PUT
    else
      local seq = s.seq
      if seq == nil then
        row_counter = row_counter + 1
        seq = { epoch = 0, timestamp = 1700000000000000 + row_counter, row_index = row_counter }
      end
      write_row(w, s, s.cols, s.action == "DELETE", seq or nil)
      rg.len = w.len - rg.offset
      rg.action = ACTIONS[s.action]
      if s.old then
        rg.has_origin = 1
        rg.origin_offset = w.len
        write_row(w, s, col_list(s.old), false, nil)
        rg.origin_len = w.len - rg.origin_offset
      end
    end
  end
  local bytes = ffi.string(w.buf, w.len)
  if #raw_parts > 0 then -- shift every range by the raw bytes inserted before it
    local out, at, shift = {}, 0, 0
    local k = 1
    for i = 0, n - 1 do
      local rg = ranges[i]
      local rp = raw_parts[k]
      if rp and list[i + 1].raw then
        out[#out + 1] = bytes:sub(at + 1, rp.off)
        at = rp.off
        rg.offset = rp.off + shift
        out[#out + 1] = rp.bytes
        shift = shift + #rp.bytes
        k = k + 1
      else
        rg.offset = rg.offset + shift
        if rg.has_origin ~= 0 then rg.origin_offset = rg.origin_offset + shift end
      end
    end
    out[#out + 1] = bytes:sub(at + 1)
    bytes = table.concat(out)
  end
  return bytes, ranges, n
end
-- The bytes and ranges of records given as specs ({action=, pk=, cols=, ...} like put/
-- update/delete take, or {raw = bytes}); what `lunnel replay` feeds for JSON Lines files.
function M.encode(list)
  local ss = {}
  for i, x in ipairs(list) do ss[i] = x.raw and x or make_spec(x.action, x) end
  return encode(ss)
end

-- Encodes specs and decodes them like the host decodes a batch.
local function build_batch(list)
  local bytes, ranges, n = encode(list)
  local size = #bytes
  local data = ffi.new("uint8_t[?]", math.max(size, 1))
  ffi.copy(data, bytes, size)
  local arena = ffi.gc(C.lunnel_arena_new(), C.lunnel_arena_free)
  local out = ffi.new("const lunnel_batch *[1]")
  local err = ffi.new("lunnel_codec_error")
  local rc = C.lunnel_pb_decode_batch(arena, data, size, ranges, n, 0, out, err)
  if rc ~= 0 then error("lunnel.testing: decode failed: " .. ffi.string(err.message), 3) end
  anchors[#anchors + 1] = { arena, data }
  local b = record.wrap(out[0])
  arena_of[b] = arena
  return b
end

local function one(action, t)
  local s = make_spec(action, t)
  local b = build_batch({ s })
  local r = b[1]
  specs[r] = s
  return r
end

function M.put(t) return one("PUT", t) end
function M.update(t) return one("UPDATE", t) end
function M.delete(t) return one("DELETE", t) end

-- A batch from records made by put/update/delete (or from specs {action=..., pk=..., ...}).
function M.batch(list)
  if record.is_batch(list) then return list end
  local ss = {}
  for i, x in ipairs(list or {}) do
    local s = specs[x]
    if not s and type(x) == "table" and x.action then s = make_spec(x.action, x) end
    if not s then error("lunnel.testing.batch: element " .. i .. " is not a record made by lunnel.testing", 2) end
    ss[#ss + 1] = s
  end
  return build_batch(ss)
end

-- Makes every view of a batch stale (what the host does when process returns).
function M.invalidate(b)
  local a = arena_of[b]
  if a then C.lunnel_arena_reset(a) end
end

function M.ctx(opts)
  opts = opts or {}
  local logs = {}
  local ctx = {
    tunnel_id = opts.tunnel_id or "test-tunnel",
    client_id = opts.client_id or "test-client",
    channel_id = opts.channel_id or "test-channel",
    is_stream = opts.is_stream ~= false,
    trace_id = opts.trace_id or "test-trace",
    next_token = nil,
    record_count = 0,
    custom = opts.custom,
    state = opts.state or {},
    logs = logs,
    commits = 0,
    script_version = opts.script_version or 1,
  }
  local log = {}
  for _, level in ipairs({ "trace", "debug", "info", "warn", "error" }) do
    log[level] = function(msg, fields)
      logs[#logs + 1] = { level = level, msg = tostring(msg), fields = fields }
    end
  end
  ctx.log = log
  function ctx.commit(self)
    (self or ctx).commits = (self or ctx).commits + 1
  end
  return ctx
end

local function load_module(path)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 3) end
  local mod = chunk()
  if type(mod) ~= "table" or type(mod.process) ~= "function" then
    error(path .. ": a script must return a table with process(ctx, batch)", 3)
  end
  return mod
end

-- Runs a script file like the host does: open(ctx) at load (unless opts.open == false),
-- script:process(records_or_batch) per batch (views invalidated when it returns, even on
-- error; errors are re-raised), script:tick() (returns true when it called ctx:commit()),
-- script:reload(new_path) (the new version's reload(ctx, old_version) runs on the same ctx,
-- as after a hot reload), script:shutdown() (true when it committed). script.module is the
-- handler table.
function M.load(path, opts)
  opts = opts or {}
  local mod = load_module(path)
  local runner = { module = mod, ctx = M.ctx(opts), batches = 0 }
  local function committed_by(self, fn)
    local before = self.ctx.commits
    fn(self.ctx)
    return self.ctx.commits > before
  end
  function runner.tick(self)
    if not self.module.tick then return false end
    return committed_by(self, self.module.tick)
  end
  function runner.reload(self, new_path)
    local new = load_module(new_path or path)
    local old = self.ctx.script_version
    self.module = new
    mod = new
    if new.reload then new.reload(self.ctx, old) end
    self.ctx.script_version = old + 1
    return self
  end
  function runner.open(self)
    if mod.open then return mod.open(self.ctx) end
  end
  function runner.process(self, list)
    local b = M.batch(list)
    self.batches = self.batches + 1
    self.ctx.next_token = "test-token-" .. self.batches
    self.ctx.record_count = #b
    local ok, res = pcall(mod.process, self.ctx, b)
    M.invalidate(b)
    if not ok then error(res, 0) end
    return res
  end
  function runner.shutdown(self)
    if not mod.shutdown then return false end
    return committed_by(self, mod.shutdown)
  end
  if opts.open ~= false then runner:open() end
  return runner
end

return M
