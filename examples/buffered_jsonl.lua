-- examples/buffered_jsonl.lua: a buffering sink. Records are collected in memory and written
-- to one JSON Lines file per channel only in tick(ctx) (every --tick-interval, also when no
-- batch comes) and shutdown(ctx), then committed there with ctx:commit(). Run it with
-- --commit manual: nothing is checkpointed before the lines that hold it are written, so a
-- crash (kill -9) loses no record; records buffered but not yet written are delivered again.
-- The same pattern serves a bulk insert into a database or a call to a remote API: flush,
-- and commit only after the flush succeeded.
--
-- CustomValue (--custom JSON):
--   dir          directory of the files (required): <dir>/<channel>.jsonl
--   max_records  also flush from process once this many records are buffered (default 5000)
--   fsync        "batch" (default: fsync every flush), "never", or seconds between fsyncs
--
--   lunnel run ... --commit manual --tick-interval 1s \
--     --custom '{"dir":"/var/lib/orders"}' examples/buffered_jsonl.lua
--
-- Safe with several workers: each channel writes its own file (a channel runs on one worker
-- at a time), with one write per flush.
local jsonl = require("lunnel.sinks.jsonl")

local M = {}

function M.open(ctx)
  local c = ctx.custom or {}
  if type(c.dir) ~= "string" then
    error("buffered_jsonl: --custom needs {\"dir\": \"/some/dir\"}")
  end
  ctx.state.out = ctx.state.out or jsonl.open({ path = c.dir .. "/{channel}.jsonl", fsync = c.fsync }, ctx)
  ctx.state.lines = ctx.state.lines or {}
  ctx.state.max = c.max_records or 5000
end

-- Writes what is buffered, then commits: every batch delivered to this channel so far is
-- now handled (its records are in the file). A write error raises before the commit.
local function flush(ctx)
  local lines = ctx.state.lines
  if #lines > 0 then
    local out = ctx.state.out
    for i = 1, #lines do out:write(lines[i]) end
    out:flush()
    ctx.state.lines = {}
  end
  ctx:commit()
end

function M.process(ctx, batch)
  local lines = ctx.state.lines
  -- record views die when process returns: keep copies (the exact r:tojson() text)
  for _, r in batch:iter() do lines[#lines + 1] = r:tojson() end
  if #lines >= ctx.state.max then flush(ctx) end
end

function M.tick(ctx)
  flush(ctx)
end

function M.shutdown(ctx)
  if ctx.state.out then
    flush(ctx)
    ctx.state.out:close()
    ctx.state.out = nil
  end
end

return M
