-- examples/to_jsonl.lua: append every record to a JSON Lines file per channel with
-- lunnel.sinks.jsonl (exact r:tojson() lines, fsync policy, size rotation).
-- CustomValue (--custom JSON):
--   dir        directory of the files (required); one file per channel: <dir>/<channel>.jsonl
--   fsync      "batch" (default), "never", or seconds between fsyncs
--   max_bytes  rotate a file before it would grow past this many bytes (default: never)
--   keep       rotated files kept per channel (default 5)
--   actions    list of actions to keep, e.g. ["PUT","UPDATE"] (default: all)
--   lunnel run ... --custom '{"dir":"/var/lib/orders","max_bytes":67108864}' examples/to_jsonl.lua
local jsonl = require("lunnel.sinks.jsonl")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  if type(c.dir) ~= "string" then error("to_jsonl: --custom needs {\"dir\": \"/some/dir\"}") end
  -- ctx.state survives hot reloads: keep the open sink instead of opening it again
  ctx.state.out = ctx.state.out or jsonl.open({
    path = c.dir .. "/{channel}.jsonl", fsync = c.fsync, max_bytes = c.max_bytes, keep = c.keep,
  }, ctx)
  if c.actions then
    local set = {}
    for _, a in ipairs(c.actions) do set[a] = true end
    ctx.state.actions = set
  end
end

function M.process(ctx, batch)
  local only = ctx.state.actions
  if only then
    ctx.state.out:write_batch(batch, function(r) return only[r.action] and r end)
  else
    ctx.state.out:write_batch(batch) -- raises on a write/fsync failure: the batch is retried
  end
end

function M.shutdown(ctx)
  if ctx.state.out then ctx.state.out:close() end
  ctx.state.out = nil
end

return M
