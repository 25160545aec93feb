-- examples/post_http.lua: POST every batch as a JSON array of exact records to an HTTP
-- endpoint with lunnel.sinks.http (own libcurl handle per worker, retries with backoff; a
-- failed delivery fails the batch, so nothing past it is checkpointed).
-- CustomValue (--custom JSON):
--   url       endpoint (required), e.g. "https://hooks.example.com/orders"
--   headers   extra request headers, e.g. {"Authorization": "Bearer ..."}
--   retries   attempts after the first (default 5); backoff first pause in s (default 0.2)
--   timeout   seconds per attempt (default 30); ca_file  PEM bundle for HTTPS
--   lunnel run ... --custom '{"url":"http://127.0.0.1:9000/ingest"}' examples/post_http.lua
local http = require("lunnel.sinks.http")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  if type(c.url) ~= "string" then error("post_http: --custom needs {\"url\": \"http(s)://...\"}") end
  ctx.state.post = ctx.state.post or http.new{
    url = c.url, headers = c.headers, retries = c.retries, backoff = c.backoff,
    timeout = c.timeout, ca_file = c.ca_file,
  }
end

function M.process(ctx, batch)
  ctx.state.post:post_batch(batch)
end

return M
