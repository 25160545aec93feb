-- lunnel.host: the Lua side of one Lua-host worker state (driven by runtime/src/lua/state.c).
-- It loads the user's script module, builds one ctx per channel, and runs open / process /
-- shutdown. C calls every function here inside one lua_pcall with a traceback handler, so an
-- error raised anywhere below fails that job with the script's traceback.
--
-- Hot reload: a version is the script plus every module it requires from its own directory
-- or a --lua-path directory ("user modules"; lunnel.* and system paths are libraries, never
-- reloaded). `load(source, chunkname, version, install, mods)` runs the script with those
-- modules served from `mods` (the exact bytes validated by the watcher), so the whole graph
-- swaps as one unit; the files each load read are left in M.recorded for the C side.
-- Installing swaps the handler table only; the ctx tables (and so ctx.state) of open
-- channels are untouched, and each channel's first call under the new version runs the
-- script's reload(ctx, old_version) hook. The C side calls load at a batch boundary.
local cjson = require("cjson")

local M = {}

local handlers      -- the active script module (table with process, open?, shutdown?)
local version = 0   -- its version number (1 = the source loaded at start)
local custom        -- decoded CustomValue (shared by every channel's ctx)
local clog          -- C: clog(level, msg, fields, channel_id)
local worker = -1
local channels = {} -- key -> ctx
local committed = {} -- key -> true when ctx:commit() was called in the running call
local user_dirs = {} -- directories whose modules belong to the script's version
local serving        -- during a load: modname -> {path=, source=} of the version's modules
local user_loaded = {} -- modname -> true: user modules now in package.loaded
M.recorded = {}      -- {name=, path=, source=} of each user module the last load required

-- record view module (lunnel.record): loaded once per state, never again on reload (its
-- ffi.cdef runs only once; it keeps itself in the registry). A state without it cannot
-- run scripts, so a failure here fails the host's start.
local record = require("lunnel.record")
local wrap = record.wrap

local Ctx = {}
Ctx.__index = Ctx

-- ctx:commit(): manual-commit mode; this batch's token (and every earlier one) may be
-- checkpointed once the batch completes.
function Ctx:commit()
  committed[rawget(self, "_key")] = true
end

local levels = { "trace", "debug", "info", "warn", "error" }

-- Fields become a flat list {k1, v1, k2, v2, ...} of strings sorted by key (stable log
-- lines); table values are logged as JSON (when cjson can encode them).
local function flatten(fields)
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do
    local v = fields[k]
    if v == nil then v = fields[tonumber(k)] end
    if type(v) == "table" then
      local ok, j = pcall(cjson.encode, v)
      v = ok and j or tostring(v)
    else
      v = tostring(v)
    end
    out[2 * i - 1], out[2 * i] = k, v
  end
  return out
end

local function make_log(channel_id)
  local log = {}
  for _, level in ipairs(levels) do
    log[level] = function(msg, fields)
      if type(fields) ~= "table" then fields = nil else fields = flatten(fields) end
      clog(level, tostring(msg), fields, channel_id)
    end
  end
  return log
end

-- A user module's file: <dir>/<a/b>.lua or <dir>/<a/b>/init.lua in the first user dir that
-- has it. Returns path, bytes (nil when none has it).
local function find_user_module(name)
  if name == "lunnel" or name:sub(1, 7) == "lunnel." then return nil end
  local rel = name:gsub("%.", "/")
  for _, d in ipairs(user_dirs) do
    for _, path in ipairs({ d .. "/" .. rel .. ".lua", d .. "/" .. rel .. "/init.lua" }) do
      local f = io.open(path, "rb")
      if f then
        local src = f:read("*a")
        f:close()
        if src then return path, src end
      end
    end
  end
  return nil
end

-- package.loaders entry (before the file searcher): user modules come from the version being
-- loaded when it has them (the validated bytes, not whatever is on disk now), else from disk.
local function user_loader(name)
  local path, src
  local s = serving and serving[name]
  if s then
    path, src = s.path, s.source
  else
    path, src = find_user_module(name)
  end
  if not path then return nil end
  local chunk, err = loadstring(src, "@" .. path)
  if not chunk then error(err, 0) end
  M.recorded[#M.recorded + 1] = { name = name, path = path, source = src }
  user_loaded[name] = true
  return chunk
end

function M.init(opts)
  clog = opts.log
  user_dirs = {}
  for d in (opts.user_dirs or ""):gmatch("[^;]+") do user_dirs[#user_dirs + 1] = d end
  table.insert(package.loaders, 2, user_loader)
  -- os.exit from a worker would kill the process without draining or checkpointing
  os.exit = function()
    error("os.exit is not allowed in a lunnel script (raise an error to fail the batch)", 2)
  end
  worker = opts.worker or -1
  if opts.custom_json then
    local ok, v = pcall(cjson.decode, opts.custom_json)
    if not ok then
      error("--custom is not valid JSON: " .. tostring(v), 0)
    end
    custom = v
  end
end

-- Compiles and runs a script source; it must return a table with a process function.
-- install=true makes it the active module. Errors (with chunkname:line) propagate to C.
function M.load(source, chunkname, ver, install, mods)
  local chunk, err = loadstring(source, chunkname)
  if not chunk then error(err, 0) end
  -- the new version requires its user modules afresh (the old handlers keep the tables they
  -- captured); library modules stay loaded
  for name in pairs(user_loaded) do package.loaded[name] = nil end
  user_loaded = {}
  M.recorded = {}
  serving = mods or {}
  local ok, mod = pcall(chunk)
  serving = nil
  if not ok then error(mod, 0) end
  if type(mod) ~= "table" then
    error(chunkname:sub(2) .. ": the script must return a table of handlers (got "
          .. type(mod) .. ")", 0)
  end
  if type(mod.process) ~= "function" then
    error(chunkname:sub(2) .. ": the script's table has no process(ctx, batch) function", 0)
  end
  for _, name in ipairs({ "open", "shutdown", "reload", "tick" }) do
    if mod[name] ~= nil and type(mod[name]) ~= "function" then
      error(chunkname:sub(2) .. ": " .. name .. " must be a function", 0)
    end
  end
  if install then
    handlers = mod
    version = ver
  end
  return true
end

function M.version()
  return version
end

function M.open(key, info)
  local ctx = setmetatable({
    _key = key,
    tunnel_id = info.tunnel_id,
    client_id = info.client_id,
    channel_id = info.channel_id,
    trace_id = info.trace_id,
    is_stream = info.is_stream,
    custom = custom,
    state = {},
    log = make_log(info.channel_id),
    worker = worker,
    script_version = version,
  }, Ctx)
  -- registered only once open() returned: a channel whose open() raised gets no process()
  -- and no shutdown() (the runtime fails it and reopens it after a backoff)
  if handlers.open then handlers.open(ctx) end
  channels[key] = ctx
  return false
end

-- A channel's first call under a version newer than the one its ctx last saw: the script's
-- reload(ctx, old_version) hook migrates ctx.state. Raising fails that call (the version
-- stays unacknowledged for this ctx, so the hook runs again on the retry).
local function enter_version(ctx)
  local seen = rawget(ctx, "script_version")
  if seen ~= version then
    if handlers.reload then handlers.reload(ctx, seen) end
    ctx.script_version = version
  end
end

function M.process(key, ptr, next_token, n, trace_id)
  local ctx = channels[key]
  if not ctx then error("lunnel host: channel has no ctx (its open() failed)", 0) end
  enter_version(ctx)
  ctx.next_token = next_token
  -- the x-ots-trace-id of the ReadRecords call that read this batch (kept when not given)
  if trace_id ~= nil then ctx.trace_id = trace_id end
  ctx.record_count = n
  committed[key] = nil
  local batch = wrap(ptr)
  handlers.process(ctx, batch)
  local c = committed[key] == true
  committed[key] = nil
  return c
end

-- tick(ctx): every --tick-interval on each open channel, batch or not; ctx:commit() here marks
-- every batch delivered to the channel so far as handled (--commit manual).
function M.tick(key)
  local ctx = channels[key]
  if not ctx or not handlers.tick then return false end
  enter_version(ctx)
  committed[key] = nil
  handlers.tick(ctx)
  local c = committed[key] == true
  committed[key] = nil
  return c
end

function M.has_tick()
  return handlers ~= nil and handlers.tick ~= nil
end

function M.shutdown(key)
  local ctx = channels[key]
  channels[key] = nil -- dropped even when shutdown raises
  committed[key] = nil
  if not ctx or not handlers.shutdown then return false end
  enter_version(ctx)
  handlers.shutdown(ctx)
  local c = committed[key] == true
  committed[key] = nil
  return c
end

return M
