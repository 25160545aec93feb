-- bench/codec/lua_view.lua: Lua-side cost of the record view on the issue-3 corpus (10 columns:
-- 5 STRING of 20 bytes, 5 INTEGER; plus an INTEGER pk), decode excluded (the batch is decoded
-- once by liblunnel's C decoder through lunnel.testing, then walked repeatedly):
--   (b) view:        every column of every record (pk included) through the view, numbers
--                    read, strings measured (r:len), no ffi.string
--   (c) ffi.string:  the same but strings fetched as Lua strings (r:get -> one copy each)
--   (d) table:       a Lua table per record (r:totable()) then read from it: the baseline
-- Usage: LUNNEL_LIB=build/liblunnel.so luajit bench/codec/lua_view.lua [records] [seconds]
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local T = require("lunnel.testing")

local NREC = tonumber(arg and arg[1]) or 1000
local SECS = tonumber(arg and arg[2]) or 1.0

local specs = {}
for i = 1, NREC do
  local cols = {}
  for c = 0, 4 do
    cols[#cols + 1] = { "s" .. c, ("value-%02d-%011d"):format(c, i) }
  end
  for c = 0, 4 do
    cols[#cols + 1] = { "i" .. c, i * 1000 + c }
  end
  specs[i] = { action = "PUT", pk = { { "id", i } }, cols = cols }
end
local batch = T.batch(specs)
assert(#batch == NREC)

local function view(b)
  local acc = 0
  for _, r in b:iter() do
    acc = acc + r.pk.id + r:get("i0") + r:get("i1") + r:get("i2") + r:get("i3") + r:get("i4")
    acc = acc + r:len("s0") + r:len("s1") + r:len("s2") + r:len("s3") + r:len("s4")
  end
  return acc
end

local function strings(b)
  local acc = 0
  for _, r in b:iter() do
    acc = acc + r.pk.id + r:get("i0") + r:get("i1") + r:get("i2") + r:get("i3") + r:get("i4")
    acc = acc + #r:get("s0") + #r:get("s1") + #r:get("s2") + #r:get("s3") + #r:get("s4")
  end
  return acc
end

local function tables(b)
  local acc = 0
  for _, r in b:iter() do
    local t = r:totable()
    local c = t.cols
    acc = acc + t.pk.id + c.i0 + c.i1 + c.i2 + c.i3 + c.i4
    acc = acc + #c.s0 + #c.s1 + #c.s2 + #c.s3 + #c.s4
  end
  return acc
end

local function measure(name, f)
  local want = f(batch) -- warm up (JIT) and reference result
  collectgarbage()
  local n, t0 = 0, os.clock()
  local t
  repeat
    assert(f(batch) == want)
    n = n + 1
    t = os.clock() - t0
  until t >= SECS
  local rate = n * NREC / t
  print(("%-12s %10.0f records/s"):format(name, rate))
  return rate
end

print(("corpus: %d records x (1 pk + 5 STRING(20) + 5 INTEGER); %s"):format(NREC, jit and jit.version or _VERSION))
local b = measure("(b) view", view)
local c = measure("(c) ffi.string", strings)
local d = measure("(d) table", tables)
print(("RESULT view_rps=%.0f string_ratio=%.3f table_ratio=%.3f"):format(b, c / b, d / b))
