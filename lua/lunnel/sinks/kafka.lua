-- lunnel.sinks.kafka: one Kafka message per record through librdkafka's idempotent producer,
-- from the Lua worker thread.
--
--   local kafka = require("lunnel.sinks.kafka")
--   function M.open(ctx)
--     ctx.state.kafka = ctx.state.kafka or kafka.new{
--       brokers = "kafka-1:9092,kafka-2:9092",   -- bootstrap.servers
--       topic = "orders-cdc",
--       value = nil,              -- function(r) -> string; default r:tojson()
--       config = { ["compression.type"] = "lz4" },  -- more librdkafka properties
--       timeout = 30,             -- seconds to wait for delivery reports
--     }
--   end
--   function M.process(ctx, batch) ctx.state.kafka:write_batch(batch) end
--   function M.tick(ctx) ctx.state.kafka:flush() end
--   function M.shutdown(ctx) ctx.state.kafka:flush() end
--
-- key = r:key() (the canonical string of the whole primary key, so a key's changes go to one
-- partition, in order), value = the documented r:tojson() shape or what value(r) returns.
-- write_batch produces every record and returns only when every delivery report of the batch
-- succeeded (acks=all, idempotent producer: retries neither duplicate nor reorder within a
-- partition); a failed report, a full queue or a timeout raises, so the batch fails and is
-- delivered again (consumers may then see a change twice, never out of order after its first
-- copy; the r.seq in the JSON tells copies apart). After write_batch nothing is outstanding,
-- so flush() in tick/shutdown returns at once; it matters for produce_batch(batch), which
-- queues without waiting (with --commit manual: flush() in tick, then ctx:commit()). A failed
-- flush leaves the sink failed (every later produce_batch/flush raises the same error until
-- reset()): the queued messages are gone, so nothing after them may be committed; let the
-- batch fail (error policy) so the channel is re-read from its checkpoint. Such a sink needs
-- own_producer = true when several channels use it.
--
-- Producers: one per worker thread and brokers + config (shared by the channels a worker
-- runs), or one per sink with own_producer = true. The C half is build/lib/lunnel_sink_kafka.so (runtime/src/sinks/sink_kafka.c), the
-- only code linking librdkafka.
local ffi = require("ffi")
local module = require("lunnel.sinks.module")
local native = require("lunnel.sinks.native")

local C = module.load{
  name = "kafka", library = "librdkafka", runtime_package = "librdkafka1",
  dev_package = "librdkafka-dev", probe = "struct lunnel_kafka",
  cdef = [[
struct lunnel_kafka;
typedef struct lunnel_kafka lunnel_kafka;
lunnel_kafka *lunnel_kafka_new(const char *brokers, const char *conf, char *errbuf, size_t errcap);
void lunnel_kafka_free(lunnel_kafka *k);
const char *lunnel_kafka_error(const lunnel_kafka *k);
long long lunnel_kafka_outstanding(const lunnel_kafka *k);
long long lunnel_kafka_delivered(const lunnel_kafka *k);
int lunnel_kafka_produce(lunnel_kafka *k, const char *topic, const void *key, size_t keylen,
                         const void *value, size_t len, int block_ms);
int lunnel_kafka_flush(lunnel_kafka *k, int timeout_ms);
]],
}

local M = {}
local Sink = {}
Sink.__index = Sink

local producers = {} -- brokers + config -> lunnel_kafka* of this worker (this Lua state)

function M.new(opts)
  if type(opts) ~= "table" then error("lunnel.sinks.kafka.new: needs an options table", 2) end
  for _, k in ipairs({ "brokers", "topic" }) do
    if type(opts[k]) ~= "string" or opts[k] == "" then
      error("lunnel.sinks.kafka.new: option " .. k .. " is required", 2)
    end
  end
  if opts.value ~= nil and type(opts.value) ~= "function" then
    error("lunnel.sinks.kafka.new: option value must be a function(r) returning a string", 2)
  end
  local lines, names = {}, {}
  for k in pairs(opts.config or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do lines[#lines + 1] = k .. "=" .. tostring(opts.config[k]) end
  return setmetatable({
    brokers = opts.brokers, topic = opts.topic, value = opts.value,
    own = opts.own_producer == true,
    conf = table.concat(lines, "\n"), timeout_ms = math.floor((tonumber(opts.timeout) or 30) * 1000),
    records = 0, batches = 0,
  }, Sink)
end

function Sink:fail(msg)
  error("lunnel.sinks.kafka: " .. self.topic .. ": " .. msg, 0)
end

function Sink:producer()
  if self.broken then self:fail("an earlier delivery failed (reset() to go on): " .. self.broken) end
  local id = self.brokers .. "\0" .. self.conf
  local p = self.own and self.p or producers[id]
  if not p then
    local err = ffi.new("char[600]")
    local k = C.lunnel_kafka_new(self.brokers, self.conf, err, 600)
    if k == nil then self:fail("cannot create the producer: " .. ffi.string(err)) end
    p = ffi.gc(k, C.lunnel_kafka_free)
    if self.own then self.p = p else producers[id] = p end
  end
  return p
end

-- Queues every record of the batch (those for which filter(r) is truthy); returns the count.
function Sink:produce_batch(batch, filter)
  local k = self:producer()
  local n = 0
  for _, r in batch:iter() do
    if not filter or filter(r) then
      native.record_ptr(r)
      local key = r:key()
      local value = self.value and self.value(r) or r:tojson()
      if type(value) ~= "string" then self:fail("the value function returned " .. type(value) .. ", not a string") end
      if C.lunnel_kafka_produce(k, self.topic, key, #key, value, #value, self.timeout_ms) ~= 0 then
        self:fail(ffi.string(C.lunnel_kafka_error(k)))
      end
      n = n + 1
    end
  end
  self.records = self.records + n
  return n
end

-- Waits for the delivery reports of everything queued on this worker's producer; raises when
-- one failed or they did not all come within the timeout.
function Sink:flush()
  local k = self:producer()
  if C.lunnel_kafka_flush(k, self.timeout_ms) ~= 0 then
    self.broken = ffi.string(C.lunnel_kafka_error(k))
    self:fail(self.broken)
  end
end

-- Clears a failed state (the caller re-sends what was lost).
function Sink:reset() self.broken = nil end

-- produce_batch + flush: the batch is delivered (every report succeeded) when this returns.
-- A failure fails only this call: the batch is sent whole again when it is re-delivered.
function Sink:write_batch(batch, filter)
  self.broken = nil
  local ok, n = pcall(self.produce_batch, self, batch, filter)
  local flushed, err = true, nil
  if ok then flushed, err = pcall(self.flush, self) end
  self.broken = nil
  if not ok then error(n, 0) end
  if not flushed then error(err, 0) end
  self.batches = self.batches + 1
  return n
end

return M
