-- lunnel.sinks.redis: keep one Redis hash per source row, through hiredis, from
-- process(ctx, batch), on the Lua worker thread.
--
--   local redis = require("lunnel.sinks.redis")
--   function M.open(ctx)
--     ctx.state.redis = ctx.state.redis or redis.new{
--       url = "redis://127.0.0.1:6379/0",  -- redis://[[user]:password@]host[:port][/db]
--       prefix = "orders:",                -- key = prefix .. r:key() (or key = function(r))
--       timeout = 5,                       -- seconds, connect and each reply
--     }
--   end
--   function M.process(ctx, batch) ctx.state.redis:write_batch(batch) end
--
-- Per record, in stream order: PUT -> DEL + HSET (the hash is replaced), UPDATE -> HSET of the
-- put columns and HDEL of the deleted ones, DELETE -> DEL. The whole batch is one
-- MULTI ... EXEC pipeline (one round trip); write_batch returns once every reply was OK, else
-- raises with Redis's message, so the batch fails and is re-delivered. Every command sets
-- rather than adds, so a re-delivered batch gives the same hashes: exactly-once in effect.
-- Values are text: INTEGER decimal, DOUBLE with 17 significant digits, BOOLEAN true/false,
-- STRING and BINARY their bytes. The default key is prefix .. r:key() (e.g. "orders:i42s3:abc":
-- per key column i<decimal>, s<len>:<bytes>, b<len>:<bytes>).
--
-- Connections: one per worker thread and URL (shared by the channels a worker runs). The C
-- half is build/lib/lunnel_sink_redis.so (runtime/src/sinks/sink_redis.c), the only code
-- linking hiredis.
local ffi = require("ffi")
local module = require("lunnel.sinks.module")
local native = require("lunnel.sinks.native")

local C = module.load{
  name = "redis", library = "libhiredis", runtime_package = "libhiredis0.14",
  dev_package = "libhiredis-dev", probe = "struct lunnel_redis",
  cdef = [[
struct lunnel_redis;
typedef struct lunnel_redis lunnel_redis;
lunnel_redis *lunnel_redis_new(void);
void lunnel_redis_free(lunnel_redis *r);
const char *lunnel_redis_error(const lunnel_redis *r);
int lunnel_redis_connected(const lunnel_redis *r);
int lunnel_redis_connect(lunnel_redis *r, const char *host, int port, int timeout_ms,
                         const char *user, const char *password, int db);
int lunnel_redis_begin(lunnel_redis *r);
int lunnel_redis_add(lunnel_redis *r, const lunnel_record *rec, const char *key, size_t keylen);
int lunnel_redis_commit(lunnel_redis *r);
void lunnel_redis_abort(lunnel_redis *r);
]],
}

local M = {}
local Sink = {}
Sink.__index = Sink

-- redis://[[user]:password@]host[:port][/db] -> host, port, user, password, db
function M.parse_url(url)
  local rest = url:match("^rediss?://(.*)$")
  if not rest then return nil, "url must look like redis://host:port/db" end
  local hostpart, user, password, lone = module.split_userinfo(rest)
  password = password or lone
  local host, port, db = hostpart:match("^([^:/]+):?(%d*)/?(%d*)$")
  if not host then return nil, "cannot read host/port/db from the url" end
  return host, tonumber(port) or 6379, user, password, tonumber(db) or 0
end

local pools = {} -- url -> { h = lunnel_redis* } of this worker (this Lua state)

function M.new(opts)
  if type(opts) ~= "table" then error("lunnel.sinks.redis.new: needs an options table", 2) end
  if type(opts.url) ~= "string" then error("lunnel.sinks.redis.new: option url is required", 2) end
  local host, port, user, password, db = M.parse_url(opts.url)
  if not host then error("lunnel.sinks.redis.new: " .. port .. " (" .. module.redact(opts.url) .. ")", 2) end
  if opts.key ~= nil and type(opts.key) ~= "function" then
    error("lunnel.sinks.redis.new: option key must be a function(r) returning a string", 2)
  end
  return setmetatable({
    url = opts.url, host = host, port = port, user = user, password = opts.password or password,
    db = db, prefix = opts.prefix or "", key = opts.key,
    timeout_ms = math.floor((tonumber(opts.timeout) or 5) * 1000),
    records = 0, batches = 0,
  }, Sink)
end

function Sink:fail(msg)
  error("lunnel.sinks.redis: " .. module.redact(self.url) .. ": " .. msg, 0)
end

function Sink:connection()
  local c = pools[self.url]
  if not c then
    local h = C.lunnel_redis_new()
    if h == nil then self:fail("out of memory") end
    c = { h = ffi.gc(h, C.lunnel_redis_free) }
    pools[self.url] = c
  end
  if C.lunnel_redis_connected(c.h) == 0 then
    if C.lunnel_redis_connect(c.h, self.host, self.port, self.timeout_ms, self.user, self.password, self.db) ~= 0 then
      self:fail("cannot connect: " .. ffi.string(C.lunnel_redis_error(c.h)))
    end
  end
  return c.h
end

-- Writes every record of the batch (those for which filter(r) is truthy) in one MULTI/EXEC;
-- returns the number of records once every reply was OK. Raises on failure.
function Sink:write_batch(batch, filter)
  local h = self:connection()
  if C.lunnel_redis_begin(h) ~= 0 then self:fail(ffi.string(C.lunnel_redis_error(h))) end
  local n = 0
  local ok, err = pcall(function()
    for _, r in batch:iter() do
      if not filter or filter(r) then
        local rec = native.record_ptr(r)
        local key = self.key and self.key(r) or (self.prefix .. r:key())
        if type(key) ~= "string" then error("the key function returned " .. type(key) .. ", not a string", 0) end
        if C.lunnel_redis_add(h, rec, key, #key) ~= 0 then error(ffi.string(C.lunnel_redis_error(h)), 0) end
        n = n + 1
      end
    end
  end)
  if not ok then
    C.lunnel_redis_abort(h)
    self:fail(tostring(err))
  end
  if C.lunnel_redis_commit(h) ~= 0 then
    local msg = ffi.string(C.lunnel_redis_error(h))
    C.lunnel_redis_abort(h)
    self:fail(msg)
  end
  self.records = self.records + n
  self.batches = self.batches + 1
  return n
end

return M
