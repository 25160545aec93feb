-- examples/to_kafka.lua: one Kafka message per change of the tunnel's table, through
-- lunnel.sinks.kafka (librdkafka, idempotent producer): key = r:key(), value = r:tojson().
-- Configured only by --custom JSON:
--   brokers   bootstrap servers, "host:port[,host:port...]" (required)
--   topic     the topic (required)
--   timeout   seconds to wait for delivery reports (30)
--   config    more librdkafka properties, e.g. {"compression.type":"lz4"}
-- Each batch waits for its delivery reports in process, so it is handled only once Kafka
-- acknowledged all of it (any --commit mode); tick and shutdown flush too (nothing is
-- outstanding then; a script that queues with produce_batch would wait there).
--   lunnel run --table orders --tunnel cdc \
--     --custom '{"brokers":"127.0.0.1:9092","topic":"orders-cdc"}' examples/to_kafka.lua
local kafka = require("lunnel.sinks.kafka")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  ctx.state.sink = ctx.state.sink or kafka.new{
    brokers = c.brokers, topic = c.topic, timeout = c.timeout, config = c.config,
  }
end

function M.process(ctx, batch)
  ctx.state.sink:write_batch(batch) -- returns once every delivery report succeeded
end

function M.tick(ctx) ctx.state.sink:flush() end
function M.shutdown(ctx) if ctx.state.sink then ctx.state.sink:flush() end end

return M
