-- filter_jsonl_spec: examples/filter_jsonl.lua keeps the right records and writes exact JSON
-- lines (full records through r:tojson(), projections through cjson).
local T = require("lunnel.testing")
local cjson = require("cjson")
local ffi = require("ffi")

local function lines(path)
  local t = {}
  for l in io.lines(path) do t[#t + 1] = l end
  return t
end

describe("examples/filter_jsonl.lua", function()
  local path
  before_each(function() path = os.tmpname() os.remove(path) end)
  after_each(function() os.remove(path) end)

  local function batch()
    return {
      T.put{ pk = {{"id", 1}}, cols = {status = "paid", total = 10, note = "a"} },
      T.put{ pk = {{"id", 2}}, cols = {status = "open", total = 20} },
      T.update{ pk = {{"id", 3}}, cols = {status = "paid", total = ffi.new("int64_t", 2) ^ 60} },
      T.delete{ pk = {{"id", 1}} },
    }
  end

  it("writes whole records as exact JSON when no fields are given", function()
    local s = T.load("examples/filter_jsonl.lua", { custom = { sink = path, actions = { "PUT", "UPDATE" } } })
    s:process(batch())
    s:shutdown()
    local got = lines(path)
    assert.are.equal(3, #got)
    assert.matches('"total":1152921504606846976', got[3], 1, true)
    assert.are.equal("paid", cjson.decode(got[1]).cols.status)
  end)

  it("filters with where and projects fields", function()
    local s = T.load("examples/filter_jsonl.lua", {
      custom = { sink = path, where = { column = "status", equals = "paid" }, fields = { "total", "missing" } },
    })
    s:process(batch())
    s:process{ T.put{ pk = {{"id", 4}}, cols = {status = "paid", total = 1} } }
    s:shutdown()
    local got = lines(path)
    assert.are.equal(3, #got)
    assert.are.same({ action = "PUT", pk = { id = 1 }, total = 10 }, cjson.decode(got[1]))
    assert.are.same({ action = "UPDATE", pk = { id = 3 }, total = "1152921504606846976" }, cjson.decode(got[2]))
    assert.are.same({ action = "PUT", pk = { id = 4 }, total = 1 }, cjson.decode(got[3]))
  end)

  it("matches non-string values with where", function()
    local s = T.load("examples/filter_jsonl.lua", { custom = { sink = path, where = { column = "total", equals = 20 } } })
    s:process(batch())
    s:shutdown()
    local got = lines(path)
    assert.are.equal(1, #got)
    assert.are.equal(2, cjson.decode(got[1]).pk.id)
  end)
end)
