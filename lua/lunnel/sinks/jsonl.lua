-- lunnel.sinks.jsonl: append records to a JSON Lines file from process(ctx, batch), with an
-- fsync policy and size rotation. Lines come from r:tojson() (exact, done in C) for record
-- views and from lua-cjson for Lua tables; nothing here encodes JSON by hand.
--
--   local jsonl = require("lunnel.sinks.jsonl")
--   function M.open(ctx)
--     ctx.state.out = ctx.state.out or jsonl.open{
--       path = "/var/lib/orders/{channel}.jsonl", -- {channel} -> ctx.channel_id
--       fsync = "batch",        -- "batch" (default): fsync at every flush; "never"; or a
--                               -- number of seconds: fsync at a flush once that long passed
--       max_bytes = 64 << 20,   -- rotate before a line would grow the file past this
--       keep = 5,               -- rotated files kept: path.1 (newest) .. path.5
--     }
--   end
--   function M.process(ctx, batch)
--     ctx.state.out:write_batch(batch)      -- every record as r:tojson(), then flush()
--     -- or: for _, r in batch:iter() do ctx.state.out:write(r) end; ctx.state.out:flush()
--   end
--   function M.shutdown(ctx) ctx.state.out:close(); ctx.state.out = nil end
--
-- write(x): a record view (its r:tojson()), a Lua table (lua-cjson), or a string (taken as one
-- JSON text; a newline is added). Lines are buffered in Lua and written by flush() with one
-- write(2) per chunk on an O_APPEND descriptor. Any failure raises a Lua error naming the file,
-- so the batch fails and is not checkpointed: at-least-once, the file may repeat lines of a
-- retried batch (dedupe on r:key() + r.seq downstream if needed).
--
-- One sink per channel (the {channel} placeholder) keeps files single-writer; two Lua
-- workers appending to one path interleave whole lines but race on rotation.
local ffi = require("ffi")
local native = require("lunnel.sinks.native")
local record = require("lunnel.record")
local lunnel = require("lunnel")
local libc = native.libc

local cjson = lunnel.json or require("cjson").new()

local M = {}
local Sink = {}
Sink.__index = Sink

local function fail(self, what, e)
  error(("lunnel.sinks.jsonl: %s %s: %s"):format(what, self.path, native.errstr(e)), 0)
end

local function open_fd(self)
  local fd = libc.open(self.path, native.O_WRONLY + native.O_CREAT + native.O_APPEND + native.O_CLOEXEC,
                       self.mode)
  if fd < 0 then fail(self, "cannot open", ffi.errno()) end
  local size = libc.lseek(fd, 0, 2) -- SEEK_END: the current size, for rotation
  if size < 0 then
    local e = ffi.errno()
    libc.close(fd)
    fail(self, "cannot seek", e)
  end
  self.fd, self.bytes = fd, tonumber(size)
end

-- Writes all of s (write(2) may write part of it; EINTR retried).
local function write_all(self, s)
  local p, left = ffi.cast("const char *", s), #s
  while left > 0 do
    local n = tonumber(libc.write(self.fd, p, left))
    if n < 0 then
      local e = ffi.errno()
      if e ~= 4 then fail(self, "cannot write", e) end -- 4 = EINTR
    else
      p, left = p + n, left - n
    end
  end
  self.bytes = self.bytes + #s
end

local function sync(self)
  if libc.fsync(self.fd) ~= 0 then fail(self, "cannot fsync", ffi.errno()) end
  self.last_sync = native.now()
  self.syncs = self.syncs + 1
end

-- path.(keep-1) -> path.keep, ..., path -> path.1, then a fresh path.
local function rotate(self)
  if self.fsync ~= "never" then sync(self) end
  libc.close(self.fd)
  self.fd = -1
  for i = self.keep - 1, 1, -1 do
    libc.rename(self.path .. "." .. i, self.path .. "." .. (i + 1)) -- missing ones: ENOENT, fine
  end
  if libc.rename(self.path, self.path .. ".1") ~= 0 then fail(self, "cannot rotate", ffi.errno()) end
  self.rotations = self.rotations + 1
  open_fd(self)
end

-- opts: path (required; "{channel}" replaced by ctx.channel_id when ctx is given), fsync,
-- max_bytes, keep (default 5), mode (default 0644).
function M.open(opts, ctx)
  if type(opts) == "string" then opts = { path = opts } end
  if type(opts) ~= "table" or type(opts.path) ~= "string" or opts.path == "" then
    error("lunnel.sinks.jsonl.open: needs { path = \"file.jsonl\", ... }", 2)
  end
  local path = opts.path
  if path:find("{channel}", 1, true) then
    local ch = ctx and ctx.channel_id
    if not ch then error("lunnel.sinks.jsonl.open: path has {channel}: pass ctx as the second argument", 2) end
    path = path:gsub("{channel}", (tostring(ch):gsub("[/%%]", "_")))
  end
  local policy = opts.fsync == nil and "batch" or opts.fsync
  if policy ~= "batch" and policy ~= "never" and not (type(policy) == "number" and policy >= 0) then
    error("lunnel.sinks.jsonl.open: fsync must be \"batch\", \"never\" or seconds >= 0, got "
          .. tostring(policy), 2)
  end
  if opts.max_bytes ~= nil and not (type(opts.max_bytes) == "number" and opts.max_bytes > 0) then
    error("lunnel.sinks.jsonl.open: max_bytes must be a positive number", 2)
  end
  local keep = opts.keep or 5
  if type(keep) ~= "number" or keep < 1 or keep ~= math.floor(keep) then
    error("lunnel.sinks.jsonl.open: keep must be an integer >= 1", 2)
  end
  local self = setmetatable({
    path = path, fsync = policy, max_bytes = opts.max_bytes, keep = keep,
    mode = opts.mode or 420, fd = -1, bytes = 0, lines = {}, pending = 0,
    lines_written = 0, rotations = 0, syncs = 0, last_sync = native.now(),
  }, Sink)
  open_fd(self)
  return self
end

-- Queues one line (see the header for what x may be).
function Sink:write(x)
  if self.fd < 0 then error("lunnel.sinks.jsonl: write after close of " .. self.path, 2) end
  local line
  if record.is_record(x) then
    line = x:tojson()
  elseif type(x) == "table" then
    line = cjson.encode(x)
  elseif type(x) == "string" then
    line = x
  else
    error("lunnel.sinks.jsonl: cannot write a " .. type(x) .. " (record view, table or string)", 2)
  end
  local n = #self.lines + 1
  self.lines[n] = line
  self.pending = self.pending + #line + 1
end

-- Every record of the batch (or fn(r)'s result; nil/false skips the record), then flush().
function Sink:write_batch(batch, fn)
  if fn then
    for _, r in batch:iter() do
      local x = fn(r)
      if x then self:write(x) end
    end
  else
    for _, r in batch:iter() do self:write(r) end
  end
  self:flush()
end

-- Writes the queued lines, rotating by size, and fsyncs per policy. Raises on failure.
function Sink:flush()
  if self.fd < 0 then error("lunnel.sinks.jsonl: flush after close of " .. self.path, 2) end
  local lines = self.lines
  local count = #lines
  if count > 0 then
    local max = self.max_bytes
    if not max then
      lines[#lines + 1] = ""
      write_all(self, table.concat(lines, "\n"))
    else
      -- chunks that fit the current file; a line longer than max_bytes gets a file of its own
      local from, size = 1, 0
      for i = 1, #lines do
        local l = #lines[i] + 1
        if self.bytes + size + l > max and (self.bytes + size) > 0 then
          if size > 0 then write_all(self, table.concat(lines, "\n", from, i - 1) .. "\n") end
          rotate(self)
          from, size = i, 0
        end
        size = size + l
      end
      write_all(self, table.concat(lines, "\n", from, count) .. "\n")
    end
    self.lines_written = self.lines_written + count
    self.lines, self.pending = {}, 0
  end
  local p = self.fsync
  if p == "batch" or (type(p) == "number" and native.now() - self.last_sync >= p) then sync(self) end
end

-- Flushes what is queued and closes the file (idempotent).
function Sink:close()
  if self.fd < 0 then return end
  local ok, err = pcall(self.flush, self)
  if type(self.fsync) == "number" and ok then pcall(sync, self) end
  libc.close(self.fd)
  self.fd = -1
  if not ok then error(err, 0) end
end

return M
