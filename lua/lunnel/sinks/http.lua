-- lunnel.sinks.http: POST each batch as JSON to an HTTP endpoint from process(ctx, batch),
-- on the Lua worker thread, with its own libcurl easy handle (lunnel_sink_http in liblunnel:
-- blocking, connection kept alive between batches), retries with exponential backoff, and an
-- error raised when delivery fails, so the batch fails and nothing is checkpointed past it.
--
--   local http = require("lunnel.sinks.http")
--   function M.open(ctx)
--     ctx.state.post = ctx.state.post or http.new{
--       url = "https://hooks.example.com/orders",
--       headers = { Authorization = "Bearer ..." },  -- extra request headers
--       timeout = 10,          -- seconds per attempt
--       retries = 5,           -- attempts after the first; then the batch fails
--       backoff = 0.2,         -- first pause, doubling, jittered, capped by max_backoff (5 s)
--       ca_file = nil,         -- PEM bundle for HTTPS (default: the system store)
--     }
--   end
--   function M.process(ctx, batch)
--     ctx.state.post:post_batch(batch)  -- body: [<r:tojson()>, ...] (exact records)
--     -- or post_batch(batch, function(r) return {id = r.pk.id, name = r:get("name")} end)
--   end
--
-- Retried: no response (connect/reset/timeout), 5xx, 408 and 429. Any other non-2xx fails at
-- once (the receiver refused the body; repeating it will not help). The receiver sees each
-- batch at least once; a retried batch repeats its records, so make the receiver idempotent
-- (e.g. keyed on the record's primary key and r.seq) for exactly-once effects.
local ffi = require("ffi")
local native = require("lunnel.sinks.native")
local retry = require("lunnel.sinks.retry")
local record = require("lunnel.record")
local lunnel = require("lunnel")
local C = native.C

local cjson = lunnel.json or require("cjson").new()

local M = {}
local Sink = {}
Sink.__index = Sink

local function handle_free(h) C.lunnel_sink_http_free(h) end

function M.new(opts)
  if type(opts) == "string" then opts = { url = opts } end
  if type(opts) ~= "table" or type(opts.url) ~= "string" or not opts.url:match("^https?://") then
    error("lunnel.sinks.http.new: needs { url = \"http(s)://...\", ... }", 2)
  end
  local lines = { "Content-Type: application/json" }
  for k, v in pairs(opts.headers or {}) do
    if tostring(k):find("[\r\n:]") or tostring(v):find("[\r\n]") then
      error("lunnel.sinks.http.new: bad header " .. tostring(k), 2)
    end
    if tostring(k):lower() == "content-type" then lines[1] = nil end
    lines[#lines + 1] = tostring(k) .. ": " .. tostring(v)
  end
  local hl = {}
  for _, l in pairs(lines) do hl[#hl + 1] = l end
  local retries = opts.retries or 5
  if type(retries) ~= "number" or retries < 0 then error("lunnel.sinks.http.new: retries must be >= 0", 2) end
  return setmetatable({
    url = opts.url, headers = table.concat(hl, "\n"),
    timeout_ms = math.floor((opts.timeout or 30) * 1000),
    retries = retries, backoff = opts.backoff or 0.2, max_backoff = opts.max_backoff or 5,
    ca_file = opts.ca_file, h = nil,
    posts = 0, attempts = 0, failures = 0, -- counters (for specs and the script's metrics)
  }, Sink)
end

local function retriable(status) return status >= 500 or status == 408 or status == 429 end

local function snippet(s)
  s = s:gsub("[%c]", " ")
  if #s > 200 then s = s:sub(1, 200) .. "..." end
  return s
end

-- POSTs body (a string, or a Lua table encoded with lua-cjson) with retries. Returns status
-- and response body of the successful attempt; raises when every attempt failed.
function Sink:post(body)
  if type(body) == "table" then body = cjson.encode(body) end
  if type(body) ~= "string" then error("lunnel.sinks.http: post needs a string or a table", 2) end
  if not self.h then
    -- made lazily so the handle belongs to the thread that uses it (the Lua worker)
    local h = C.lunnel_sink_http_new()
    if h == nil then error("lunnel.sinks.http: cannot create a libcurl handle", 2) end
    self.h = ffi.gc(h, handle_free)
  end
  self.posts = self.posts + 1
  local status = ffi.new("long[1]")
  local blen = ffi.new("size_t[1]")
  local ok_status, ok_resp
  local ok, last = retry.run(self, function()
    local rc = C.lunnel_sink_http_post(self.h, self.url, self.headers, body, #body, self.timeout_ms,
                                       self.ca_file, status)
    if rc ~= 0 then return retry.post_failed(self.h, rc) end
    local st = tonumber(status[0])
    local p = C.lunnel_sink_http_body(self.h, blen)
    local resp = ffi.string(p, blen[0])
    if st >= 200 and st < 300 then
      ok_status, ok_resp = st, resp
      return true
    end
    return false, retriable(st), ("status %d: %s"):format(st, snippet(resp))
  end)
  if ok then return ok_status, ok_resp end
  self.failures = self.failures + 1
  error(("lunnel.sinks.http: POST %s failed: %s"):format(self.url, last), 2)
end

-- POSTs the batch as one JSON array: each element r:tojson(), or fn(r) (a table, encoded with
-- lua-cjson, or a JSON string; nil/false skips the record). Nothing is sent when every
-- record was skipped. Returns the number of records sent.
function Sink:post_batch(batch, fn)
  local parts, n = {}, 0
  for _, r in batch:iter() do
    local x = r
    if fn then x = fn(r) end
    if x then
      n = n + 1
      if record.is_record(x) then
        parts[n] = x:tojson()
      elseif type(x) == "table" then
        parts[n] = cjson.encode(x)
      elseif type(x) == "string" then
        parts[n] = x
      else
        error("lunnel.sinks.http: post_batch's function returned a " .. type(x), 2)
      end
    end
  end
  if n == 0 then return 0 end
  self:post("[" .. table.concat(parts, ",") .. "]")
  return n
end

return M
