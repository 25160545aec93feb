-- jsonl_spec: lunnel.sinks.jsonl writes exact lines (r:tojson() and lua-cjson), appends to an
-- existing file, rotates by size without splitting or losing lines, honours the fsync policy,
-- and fails loudly; examples/to_jsonl.lua writes one file per channel.
local T = require("lunnel.testing")
local jsonl = require("lunnel.sinks.jsonl")
local cjson = require("cjson")
local ffi = require("ffi")

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'") == 0)
  return p
end

local function lines(path)
  local t = {}
  local f = io.open(path)
  if not f then return t end
  for l in f:lines() do t[#t + 1] = l end
  f:close()
  return t
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("lunnel.sinks.jsonl", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("writes records as exact JSON, tables through cjson, strings as given", function()
    local path = dir .. "/a.jsonl"
    local out = jsonl.open{ path = path }
    local b = T.batch{
      T.put{ pk = {{"id", 1}, {"k", "a"}}, cols = {n = ffi.new("int64_t", 2) ^ 60 + 1, s = "héllo"} },
      T.delete{ pk = {{"id", 2}, {"k", "b"}} },
    }
    out:write_batch(b)
    out:write({ x = 1, y = "z" })
    out:write('{"raw":true}')
    out:flush()
    out:close()
    local got = lines(path)
    assert.are.equal(4, #got)
    assert.matches('"n":1152921504606846977', got[1], 1, true)
    assert.are.equal("héllo", cjson.decode(got[1]).cols.s)
    assert.are.equal("DELETE", cjson.decode(got[2]).action)
    assert.same({ x = 1, y = "z" }, cjson.decode(got[3]))
    assert.are.equal('{"raw":true}', got[4])
    assert.are.equal(4, out.lines_written)
  end)

  it("appends to an existing file and uses write_batch's filter", function()
    local path = dir .. "/b.jsonl"
    local f = assert(io.open(path, "w"))
    f:write('{"old":1}\n')
    f:close()
    local out = jsonl.open{ path = path, fsync = "never" }
    out:write_batch(T.batch{
      T.put{ pk = {{"id", 1}}, cols = {v = 1} },
      T.put{ pk = {{"id", 2}}, cols = {v = 2} },
    }, function(r) return r.pk.id == 2 and { id = r.pk.id, v = r:get("v") } end)
    out:close()
    local got = lines(path)
    assert.same({ '{"old":1}', cjson.encode({ id = 2, v = 2 }) }, got)
    assert.are.equal(0, out.syncs) -- "never": not even at close
  end)

  it("rotates by size: no file past max_bytes (unless one line is bigger), no line lost", function()
    local path = dir .. "/r.jsonl"
    local out = jsonl.open{ path = path, max_bytes = 200, keep = 50, fsync = "never" }
    local want = {}
    for i = 1, 40 do
      local line = cjson.encode({ i = i, pad = string.rep("x", i % 7) })
      want[#want + 1] = line
      out:write(line)
      if i % 9 == 0 then out:flush() end
    end
    out:write(string.rep("y", 300)) -- longer than max_bytes: a file of its own
    want[#want + 1] = string.rep("y", 300)
    out:close()
    assert.is_true(out.rotations >= 5)
    -- oldest file has the highest suffix
    local all = {}
    for i = out.rotations, 1, -1 do
      local p = path .. "." .. i
      local f = assert(io.open(p))
      local size = f:seek("end")
      f:close()
      local ls = lines(p)
      if #ls > 1 then assert.is_true(size <= 200, p .. " has " .. size .. " bytes") end
      for _, l in ipairs(ls) do all[#all + 1] = l end
    end
    for _, l in ipairs(lines(path)) do all[#all + 1] = l end
    assert.same(want, all)
  end)

  it("keeps at most `keep` rotated files", function()
    local path = dir .. "/k.jsonl"
    local out = jsonl.open{ path = path, max_bytes = 10, keep = 2, fsync = "never" }
    for i = 1, 6 do out:write('"line-' .. i .. '"') out:flush() end
    out:close()
    assert.same({ '"line-6"' }, lines(path))
    assert.same({ '"line-5"' }, lines(path .. ".1"))
    assert.same({ '"line-4"' }, lines(path .. ".2"))
    assert.is_false(exists(path .. ".3"))
  end)

  it("fsync policy: batch syncs every flush, an interval syncs at most that often", function()
    local a = jsonl.open{ path = dir .. "/s1.jsonl" }
    for _ = 1, 3 do a:write('"x"') a:flush() end
    assert.are.equal(3, a.syncs)
    a:close()
    local b = jsonl.open{ path = dir .. "/s2.jsonl", fsync = 3600 }
    for _ = 1, 3 do b:write('"x"') b:flush() end
    assert.are.equal(0, b.syncs) -- the hour has not passed
    b:close()
    assert.are.equal(1, b.syncs) -- close syncs what the interval left
    local c = jsonl.open{ path = dir .. "/s3.jsonl", fsync = 0 }
    c:write('"x"') c:flush()
    assert.are.equal(1, c.syncs)
    c:close()
  end)

  it("rejects bad options and fails with the file name when it cannot open", function()
    assert.has_error(function() jsonl.open{} end)
    assert.has_error(function() jsonl.open{ path = dir .. "/x", fsync = "sometimes" } end)
    assert.has_error(function() jsonl.open{ path = dir .. "/x", max_bytes = -1 } end)
    local ok, err = pcall(jsonl.open, { path = dir .. "/no/such/dir/x.jsonl" })
    assert.is_false(ok)
    assert.matches("cannot open .*no/such/dir/x.jsonl: No such file", err)
    local out = jsonl.open{ path = dir .. "/c.jsonl" }
    out:close()
    assert.has_error(function() out:write("1") end)
  end)

  it("a failing write raises (the batch fails, nothing is checkpointed)", function()
    local f = io.open("/dev/full", "w")
    if not f then return pending("no /dev/full here") end
    f:close()
    local out = jsonl.open{ path = "/dev/full", fsync = "never" }
    out:write('"x"')
    local ok, err = pcall(out.flush, out)
    assert.is_false(ok)
    assert.matches("cannot write /dev/full: No space left", err)
  end)

  it("a stale record view is refused, not read", function()
    local out = jsonl.open{ path = dir .. "/st.jsonl" }
    local b = T.batch{ T.put{ pk = {{"id", 1}}, cols = {v = 1} } }
    local r = b[1]
    T.invalidate(b)
    assert.has_error(function() out:write(r) end)
    out:close()
  end)
end)

describe("examples/to_jsonl.lua", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("writes each channel to its own file and keeps only the chosen actions", function()
    local s1 = T.load("examples/to_jsonl.lua", { channel_id = "ch-1", custom = { dir = dir, actions = { "PUT", "DELETE" } } })
    local s2 = T.load("examples/to_jsonl.lua", { channel_id = "ch-2", custom = { dir = dir } })
    s1:process{ T.put{ pk = {{"id", 1}}, cols = {v = 1} }, T.update{ pk = {{"id", 1}}, cols = {v = 2} },
                T.delete{ pk = {{"id", 1}} } }
    s2:process{ T.update{ pk = {{"id", 9}}, cols = {v = 3} } }
    s1:shutdown()
    s2:shutdown()
    local a, b = lines(dir .. "/ch-1.jsonl"), lines(dir .. "/ch-2.jsonl")
    assert.are.equal(2, #a)
    assert.are.equal("PUT", cjson.decode(a[1]).action)
    assert.are.equal("DELETE", cjson.decode(a[2]).action)
    assert.are.equal(1, #b)
    assert.are.equal(3, cjson.decode(b[1]).cols.v)
  end)

  it("refuses to start without a dir", function()
    assert.has_error(function() T.load("examples/to_jsonl.lua", { custom = {} }) end)
  end)
end)
