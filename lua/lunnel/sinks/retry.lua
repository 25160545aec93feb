-- lunnel.sinks.retry: the retry loop the network sinks (http, tablestore) share: up to
-- self.retries + 1 attempts, each counted in self.attempts, with a jittered pause between them
-- that doubles from self.backoff up to self.max_backoff; and how a POST that failed below HTTP
-- (lunnel_sink_http_post's non-zero code) is judged.
local ffi = require("ffi")
local native = require("lunnel.sinks.native")
local C = native.C

local M = {}

-- Calls attempt() until it returns true, or returns false with again == false, or the
-- attempts run out: attempt returns true on success, else false, again (worth another try),
-- message. Returns true, or false and the last message.
function M.run(self, attempt)
  local pause, last = self.backoff, nil
  for n = 1, self.retries + 1 do
    self.attempts = self.attempts + 1
    local ok, again, msg = attempt()
    if ok then return true end
    last = msg
    if not again then break end
    if n <= self.retries then
      -- math.random is seeded from the kernel in every Lua state (runtime/src/lua/state.c):
      -- two processes never pause in lockstep
      native.sleep(pause * (0.75 + 0.5 * math.random()))
      pause = math.min(pause * 2, self.max_backoff)
    end
  end
  return false, last
end

-- The attempt's answer for a POST that returned code rc ~= 0 on handle h: transport errors
-- are worth another try, usage/memory errors are not.
function M.post_failed(h, rc)
  return false, rc == 4, ffi.string(C.lunnel_sink_http_error(h)) -- 4: LUNNEL_SINK_TRANSPORT
end

return M
