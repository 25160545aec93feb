-- run_fail.lua: a script that fails on purpose, for the pacing tests of `lunnel run`
-- (tests/node/run_pacing.test.mjs, run_chaos.test.mjs). Like run_ids.lua it appends
-- "<pk id> <v>\n" per record to <custom.dir>/<channel>.ids (one write per batch, after the
-- whole batch succeeded) and "#open\n" when open() succeeded. It also counts every call in
-- <custom.dir>/calls.log ("open <channel>", "process <channel> <n>", "shutdown <channel>"),
-- written before the call may fail, so a test sees what lunnel asked of the script.
--   custom.fail_open / fail_process / fail_shutdown: true = always raise there; a number in
--   (0, 1) = raise with that probability, drawn from a generator seeded with custom.seed (so
--   a run is reproducible from the printed seed);
--   custom.fail_first: besides, per Lua state, the first open(), the first two process() calls
--   (one batch and its retry: with --max-retries 1 its channel closes) and the first
--   shutdown() raise, so a short random run still fails in all three places;
--   custom.poison: a record with a column `poison` makes process() raise (always).
local M = {}

local files = {}
local calls
local state = 0

-- A small LCG so the failure pattern depends on custom.seed only (not on math.random, which
-- lunnel seeds from the kernel in every state).
local function rand01(ctx)
  if state == 0 then state = (ctx.custom.seed or 1) * 2654435761 % 4294967296 + ctx.worker end
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end

local firsts = { fail_open = 1, fail_process = 2, fail_shutdown = 1 }

local function fails(ctx, what)
  if ctx.custom.fail_first and firsts[what] > 0 then
    firsts[what] = firsts[what] - 1
    return true
  end
  local f = ctx.custom[what]
  if f == true then return true end
  if type(f) == "number" then return rand01(ctx) < f end
  return false
end

local function note(ctx, line)
  if not calls then
    calls = assert(io.open(ctx.custom.dir .. "/calls.log", "a"))
    calls:setvbuf("line")
  end
  calls:write(line, "\n")
end

function M.open(ctx)
  note(ctx, "open " .. ctx.channel_id)
  if fails(ctx, "fail_open") then error("cannot reach the database (fail_open)") end
  local f = assert(io.open(ctx.custom.dir .. "/" .. ctx.channel_id .. ".ids", "a"))
  f:setvbuf("no")
  f:write("#open\n")
  files[ctx.channel_id] = f
end

function M.process(ctx, batch)
  note(ctx, "process " .. ctx.channel_id .. " " .. tostring(#batch))
  if fails(ctx, "fail_process") then error("the sink refused the batch (fail_process)") end
  local out, n = {}, 0
  for _, r in batch:iter() do
    if ctx.custom.poison and r:get("poison") ~= nil then
      error("poison record " .. tostring(r.pk.id))
    end
    n = n + 1
    local v = r:get("v")
    out[n] = tostring(r.pk.id) .. " " .. (v ~= nil and tostring(v) or "-")
  end
  if n > 0 then files[ctx.channel_id]:write(table.concat(out, "\n") .. "\n") end
end

function M.shutdown(ctx)
  note(ctx, "shutdown " .. ctx.channel_id)
  local f = files[ctx.channel_id]
  if f then f:close() end
  files[ctx.channel_id] = nil
  if fails(ctx, "fail_shutdown") then error("flush on shutdown failed (fail_shutdown)") end
end

return M
