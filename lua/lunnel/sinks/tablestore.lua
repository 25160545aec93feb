-- lunnel.sinks.tablestore: replicate records into another Tablestore table with BatchWriteRow,
-- from process(ctx, batch), on the Lua worker thread.
--
--   local tablestore = require("lunnel.sinks.tablestore")
--   function M.open(ctx)
--     ctx.state.rep = ctx.state.rep or tablestore.new{
--       endpoint = "https://backup.cn-hangzhou.ots.aliyuncs.com",
--       instance = "backup", table = "orders_copy",
--       -- credentials default to TABLESTORE_ACCESS_KEY_ID / TABLESTORE_ACCESS_KEY_SECRET /
--       -- TABLESTORE_SECURITY_TOKEN (the same variables lunnel run reads)
--       retries = 8, backoff = 0.1, max_backoff = 5, timeout = 30, ca_file = nil,
--     }
--   end
--   function M.process(ctx, batch)
--     ctx.state.rep:write_batch(batch)               -- every record, in order
--     -- or write_batch(batch, function(r) return r.pk.region == "eu" end)   -- a filter
--   end
--
-- Faithful replay (lunnel_sink_bwr_add in runtime/src/sinks/sink_bwr.c): PUT -> PutRow (the
-- whole row, each cell's timestamp kept), UPDATE -> UpdateRow with each cell's op (put /
-- delete one version / delete all versions) and timestamp, DELETE -> DeleteRow; condition
-- IGNORE. Rows are encoded as PlainBuffer by liblunnel's writer and signed with liblunnel's
-- signing code (the C half: lunnel/sink_support.h, cdef'd once in lunnel.sinks.native).
--
-- Order: records of one key reach the target in stream order: a request never holds two
-- changes of the same primary key (a repeated key starts a new request), requests go one at a
-- time, and rows that failed with a retriable code are retried before anything after them.
-- Failure (a non-retriable row error, or retries exhausted) raises a Lua error naming the
-- row's code and the request id: the batch fails and is not checkpointed; the retried batch
-- re-applies rows already written, which is harmless because every write is an idempotent
-- replay with the original timestamps.
local ffi = require("ffi")
local native = require("lunnel.sinks.native")
local retry = require("lunnel.sinks.retry")
local C = native.C

local M = {}
local Sink = {}
Sink.__index = Sink

-- Flush before a request grows past this many PlainBuffer bytes (the service caps a
-- BatchWriteRow request at 4 MB).
local MAX_BYTES = 3 * 1024 * 1024

local function free_bwr(b) C.lunnel_sink_bwr_free(b) end
local function free_http(h) C.lunnel_sink_http_free(h) end

function M.new(opts)
  if type(opts) ~= "table" then error("lunnel.sinks.tablestore.new: needs an options table", 2) end
  for _, k in ipairs({ "endpoint", "instance", "table" }) do
    if type(opts[k]) ~= "string" or opts[k] == "" then
      error("lunnel.sinks.tablestore.new: option " .. k .. " is required", 2)
    end
  end
  local endpoint = opts.endpoint:gsub("/+$", "")
  if not endpoint:match("^https?://") then
    error("lunnel.sinks.tablestore.new: endpoint must start with http:// or https://", 2)
  end
  local ak = opts.access_key_id or os.getenv("TABLESTORE_ACCESS_KEY_ID")
  local sk = opts.access_key_secret or os.getenv("TABLESTORE_ACCESS_KEY_SECRET")
  if not ak or ak == "" or not sk or sk == "" then
    error("lunnel.sinks.tablestore.new: no credentials (access_key_id/access_key_secret or "
          .. "TABLESTORE_ACCESS_KEY_ID/TABLESTORE_ACCESS_KEY_SECRET)", 2)
  end
  local sts = opts.sts_token or os.getenv("TABLESTORE_SECURITY_TOKEN")
  if sts == "" then sts = nil end
  local b = C.lunnel_sink_bwr_new(opts.table)
  if b == nil then error("lunnel.sinks.tablestore.new: out of memory", 2) end
  return setmetatable({
    url = endpoint .. "/BatchWriteRow", instance = opts.instance, table = opts.table,
    ak = ak, sk = sk, sts = sts,
    retries = opts.retries or 8, backoff = opts.backoff or 0.1, max_backoff = opts.max_backoff or 5,
    timeout_ms = math.floor((opts.timeout or 30) * 1000), ca_file = opts.ca_file,
    b = ffi.gc(b, free_bwr), h = nil, keys = {},
    hdr = ffi.new("char[?]", 1024 + #opts.instance + #ak + #(sts or "")), -- signed headers
    -- counters (specs, the script's own metrics)
    rows = 0, requests = 0, attempts = 0, skipped = 0,
  }, Sink)
end

local function fail(self, msg)
  C.lunnel_sink_bwr_clear(self.b)
  self.keys = {}
  error("lunnel.sinks.tablestore: " .. self.table .. ": " .. msg, 0)
end

local body_p = ffi.new("const uint8_t *[1]")
local len_p = ffi.new("size_t[1]")
local status_p = ffi.new("long[1]")
local fatal_p = ffi.new("int[1]")
local msg_buf = ffi.new("char[600]")

-- Sends the rows held, retrying failed rows / requests; returns when all are applied.
function Sink:flush()
  local b = self.b
  local n = C.lunnel_sink_bwr_count(b)
  if n == 0 then return end
  if not self.h then
    local h = C.lunnel_sink_http_new() -- lazily: owned by the worker thread that uses it
    if h == nil then fail(self, "cannot create a libcurl handle") end
    self.h = ffi.gc(h, free_http)
  end
  self.requests = self.requests + 1
  local ok, last = retry.run(self, function()
    local rc = C.lunnel_sink_bwr_encode(b, body_p, len_p)
    if rc ~= 0 then fail(self, ffi.string(C.lunnel_sink_bwr_message(b))) end
    local body, len = body_p[0], len_p[0]
    rc = C.lunnel_sink_ots_headers("/BatchWriteRow", self.instance, self.ak, self.sk, self.sts,
                                   body, len, self.hdr, ffi.sizeof(self.hdr))
    if rc ~= 0 then fail(self, "cannot sign the request") end
    rc = C.lunnel_sink_http_post(self.h, self.url, self.hdr, body, len, self.timeout_ms,
                                 self.ca_file, status_p)
    if rc ~= 0 then return retry.post_failed(self.h, rc) end
    local st = tonumber(status_p[0])
    local rid = ffi.string(C.lunnel_sink_http_request_id(self.h))
    local rbody = C.lunnel_sink_http_body(self.h, len_p)
    if st < 200 or st >= 300 then
      local retriable = C.lunnel_sink_ots_error(rbody, len_p[0], msg_buf, ffi.sizeof(msg_buf))
      return false, st >= 500 or retriable ~= 0,
             ("status %d: %s (request id %s)"):format(st, ffi.string(msg_buf), rid)
    end
    local failed = C.lunnel_sink_bwr_check_response(b, rbody, len_p[0], fatal_p)
    if failed == 0 then
      self.rows = self.rows + n
      C.lunnel_sink_bwr_clear(b)
      self.keys = {}
      return true
    end
    local msg = ffi.string(C.lunnel_sink_bwr_message(b)) .. " (request id " .. rid .. ")"
    if failed < 0 then fail(self, msg) end
    if fatal_p[0] ~= 0 then fail(self, msg) end
    -- keep only the failed rows (distinct keys, so their relative order does not matter)
    local before = C.lunnel_sink_bwr_count(b)
    C.lunnel_sink_bwr_keep_failed(b)
    self.rows = self.rows + (before - C.lunnel_sink_bwr_count(b))
    return false, true, msg
  end)
  if ok then return end
  fail(self, "BatchWriteRow failed after " .. (self.retries + 1) .. " attempt(s): " .. tostring(last))
end

-- Queues the change of one record view (sending earlier rows first when needed).
function Sink:write(r)
  local key = native.record_ptr(r) and r:key()
  local b = self.b
  if self.keys[key] or C.lunnel_sink_bwr_count(b) >= 200 or C.lunnel_sink_bwr_bytes(b) >= MAX_BYTES then
    self:flush()
  end
  local rc = C.lunnel_sink_bwr_add(b, r.r)
  if rc < 0 then fail(self, ffi.string(C.lunnel_sink_bwr_message(b))) end
  if rc == 1 then
    self.skipped = self.skipped + 1
  else
    self.keys[key] = true
  end
end

-- Replicates every record of the batch (those for which filter(r) is truthy when given), in
-- order, and returns once the target has applied them all. Raises on failure.
function Sink:write_batch(batch, filter)
  for _, r in batch:iter() do
    if not filter or filter(r) then self:write(r) end
  end
  self:flush()
end

return M
