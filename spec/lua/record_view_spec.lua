-- record_view_spec: the Lua API of DESIGN.md on records built by lunnel.testing (real C
-- encoder + decoder): batch access, every accessor, INTEGER mapping, JSON, keys, stale views.
local ffi = require("ffi")
local T = require("lunnel.testing")
local record = require("lunnel.record")
local cjson = require("cjson")

describe("batch", function()
  local b = T.batch{
    T.put{ pk = {{"id", 1}}, cols = {v = "a"} },
    T.update{ pk = {{"id", 2}}, cols = {v = "b"} },
    T.delete{ pk = {{"id", 3}} },
  }

  it("has a length, 1-based indexing and an iterator", function()
    assert.are.equal(3, #b)
    assert.are.equal("PUT", b[1].action)
    assert.are.equal("UPDATE", b[2].action)
    assert.are.equal("DELETE", b[3].action)
    assert.is_nil(b[0])
    assert.is_nil(b[4])
    assert.is_nil(b[1.5])
    local seen = {}
    for i, r in b:iter() do seen[#seen + 1] = i .. ":" .. r.pk.id end
    assert.are.same({ "1:1", "2:2", "3:3" }, seen)
    assert.is_true(record.is_batch(b))
    assert.is_true(record.is_record(b[1]))
    assert.matches("3 records", tostring(b))
  end)
end)

describe("record accessors", function()
  local r = T.update{
    pk = {{"id", 42}, {"k", "key-42"}, {"bin", T.binary("\0\255")}},
    cols = {
      {"s", "hello"}, {"n", -7}, {"d", T.double(3)}, {"t", true}, {"f", false},
      {"big", ffi.new("int64_t", 2) ^ 62}, {"edge", 2 ^ 53}, {"neg", -(2 ^ 53) - 2},
      {"old_v", nil, op = "DELETE_ONE_VERSION", ts = 1496826473186},
      {"ts_col", "x", ts = 1700000000123},
    },
    delete = {"gone"},
    old = { s = "before", n = 1 },
    seq = { epoch = 3, timestamp = 1700000000000001, row_index = 9 },
  }

  it("gives action, pk by name and by position", function()
    assert.are.equal("UPDATE", r.action)
    assert.are.equal(42, r.pk.id)
    assert.are.equal("key-42", r.pk.k)
    assert.are.equal("\0\255", r.pk.bin)
    assert.is_nil(r.pk.nope)
    local name, value = r:pk(2)
    assert.are.equal("k", name)
    assert.are.equal("key-42", value)
    assert.is_nil(r:pk(4))
    assert.are.equal(3, #r.pk)
  end)

  it("maps values to Lua types", function()
    assert.are.equal("hello", r:get("s"))
    assert.are.equal(-7, r:get("n"))
    assert.are.equal("number", type(r:get("n")))
    assert.are.equal(3, r:get("d"))
    assert.are.equal("DOUBLE", r:type("d"))
    assert.is_true(r:get("t"))
    assert.is_false(r:get("f"))
    assert.is_nil(r:get("missing"))
  end)

  it("keeps integers exact: numbers up to 2^53, int64 cdata beyond", function()
    assert.are.equal("number", type(r:get("edge")))
    assert.are.equal(2 ^ 53, r:get("edge"))
    local big = r:get("big")
    assert.are.equal("cdata", type(big))
    assert.is_true(big == ffi.new("int64_t", 2) ^ 62)
    assert.are.equal("-9007199254740994LL", tostring(r:get("neg")))
    local n64 = r:get("n", "int64")
    assert.are.equal("cdata", type(n64))
    assert.is_true(n64 == -7)
  end)

  it("returns nil for delete cells and reports types", function()
    assert.is_nil(r:get("old_v"))
    assert.is_nil(r:get("gone"))
    assert.is_nil(r:type("gone"))
    assert.are.equal("STRING", r:type("s"))
    assert.are.equal("INTEGER", r:type("id"))
    assert.are.equal("BINARY", r:type("bin"))
    assert.are.equal("BOOLEAN", r:type("t"))
    assert.is_true(r:has("s"))
    assert.is_false(r:has("gone"))
  end)

  it("compares and measures strings without copying", function()
    assert.are.equal(5, r:len("s"))
    assert.is_true(r:equals("s", "hello"))
    assert.is_false(r:equals("s", "hellO"))
    assert.is_false(r:equals("n", "x"))
    assert.is_nil(r:len("n"))
  end)

  it("iterates columns with op and timestamp", function()
    local got = {}
    for name, value, op, ts in r:columns() do
      got[#got + 1] = { name, value == nil and "nil" or tostring(value), op, ts }
    end
    assert.are.same({ "old_v", "nil", "DELETE_ONE_VERSION", 1496826473186 }, got[9])
    assert.are.same({ "ts_col", "x", "PUT", 1700000000123 }, got[10])
    assert.are.same({ "gone", "nil", "DELETE_ALL_VERSIONS" }, got[11])
    assert.are.equal(11, #got)
  end)

  it("has old values and sequence info", function()
    assert.are.equal("before", r:old("s"))
    assert.are.equal(1, r:old("n"))
    assert.is_nil(r:old("t"))
    assert.are.same({ epoch = 3, timestamp = 1700000000000001, row_index = 9 }, r.seq)
    assert.are.equal(1700000000000001, r.timestamp)
    local p = T.put{ pk = {{"id", 1}}, seq = false }
    assert.is_nil(p.seq)
    assert.is_nil(p.timestamp)
    assert.is_nil(p:old("x"))
  end)

  it("makes canonical keys usable as table keys", function()
    assert.are.equal("i42s6:key-42b2:\0\255", r:key())
    local a = T.put{ pk = {{"a", "x1"}, {"b", 2}} }
    local b = T.put{ pk = {{"a", "x"}, {"b", 12}} }
    assert.are_not.equal(a:key(), b:key())
    local same = T.update{ pk = {{"a", "x1"}, {"b", 2}}, cols = {z = 1} }
    assert.are.equal(a:key(), same:key())
  end)

  it("renders exact JSON in C", function()
    local j = r:tojson()
    local t = cjson.decode(j)
    assert.are.equal("UPDATE", t.action)
    assert.are.equal("hello", t.cols.s)
    -- DELETE_ALL_VERSIONS only; the timestamped DELETE_ONE_VERSION cell is in "cells"
    assert.are.same({ "gone" }, t.deleted)
    assert.matches('["old_v","DELETE_ONE_VERSION",null,1496826473186]', j, 1, true)
    assert.are.equal("before", t.old.s)
    assert.are.equal(9, t.seq.row_index)
    assert.matches('"big":4611686018427387904', j, 1, true)
    assert.matches('"bin":{"binary":"AP8="}', j, 1, true)
  end)

  it("copies into a table", function()
    local t = r:totable()
    assert.are.equal("UPDATE", t.action)
    assert.are.equal(42, t.pk.id)
    assert.are.equal("hello", t.cols.s)
    assert.are.same({ "old_v", "gone" }, t.deleted)
    assert.are.equal("before", t.old.s)
    assert.are.equal(3, t.seq.epoch)
  end)

  it("prints readably", function()
    local s = tostring(r)
    assert.matches('^UPDATE pk%(id=42, k="key%-42"', s)
    assert.matches('s="hello"', s, 1, true)
    assert.matches("gone:DELETE_ALL_VERSIONS", s, 1, true)
    assert.matches("old_v:DELETE_ONE_VERSION@1496826473186", s, 1, true)
  end)

  it("rejects a non-string column name", function()
    assert.has_error(function() r:get(1) end)
  end)
end)

describe("stale views", function()
  it("raise a Lua error after the batch is invalidated", function()
    local b = T.batch{ T.put{ pk = {{"id", 1}}, cols = {v = "a"} } }
    local r = b[1]
    local pk = r.pk
    assert.are.equal("a", r:get("v"))
    T.invalidate(b)
    for _, f in ipairs({
      function() return #b end,
      function() return b[1] end,
      function() return b:iter() end,
      function() return r:get("v") end,
      function() return r.action end,
      function() return r:key() end,
      function() return r:tojson() end,
      function() return pk.id end,
      function() return r:pk(1) end,
    }) do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.matches("stale", err)
    end
    assert.are.equal("lunnel.record<stale>", tostring(r))
  end)

  it("point the error at the caller's line", function()
    local b = T.batch{ T.put{ pk = {{"id", 1}} } }
    local r = b[1]
    T.invalidate(b)
    local ok, err = pcall(function() return r.action end)
    assert.is_false(ok)
    assert.matches("record_view_spec.lua:%d+: lunnel: stale record view", err)
  end)

  it("also hold when the arena is reused by a later batch", function()
    local s = T.load("spec/lua/fixtures/keep_records.lua")
    s:process{ T.put{ pk = {{"id", 1}} } }
    local kept = s.ctx.state.kept
    s:process{ T.put{ pk = {{"id", 2}} } }
    assert.has_error(function() return kept.action end)
  end)
end)

describe("a column named twice in one row", function()
  it("reads the cell that has a value", function()
    local r = T.update{ pk = {{"id", 1}}, cols = {
      {"c", nil, op = "DELETE_ONE_VERSION", ts = 5}, {"c", "new", ts = 6},
    } }
    assert.are.equal("new", r:get("c"))
    assert.are.equal("STRING", r:type("c"))
    assert.is_true(r:equals("c", "new"))
    assert.is_true(r:has("c"))
    local ops = {}
    for name, _, op in r:columns() do ops[#ops + 1] = name .. ":" .. op end
    assert.are.same({ "c:DELETE_ONE_VERSION", "c:PUT" }, ops)
  end)
end)

describe("column names", function()
  it("tells apart long names sharing their first 8 bytes", function()
    local r = T.put{ pk = {{"customer_id", 5}}, cols = {
      {"customer_name", "ann"}, {"customer_note", "vip"}, {"customer", "c"}, {"customer_", "d"},
    } }
    assert.are.equal("ann", r:get("customer_name"))
    assert.are.equal("vip", r:get("customer_note"))
    assert.are.equal("c", r:get("customer"))
    assert.are.equal("d", r:get("customer_"))
    assert.is_nil(r:get("customer_nam"))
    assert.is_nil(r:get("customer_namf"))
    assert.are.equal(5, r.pk.customer_id)
  end)

  it("finds columns whose position changes from record to record", function()
    local b = T.batch{
      T.put{ pk = {{"id", 1}}, cols = {{"a", 1}, {"b", 2}} },
      T.put{ pk = {{"id", 2}}, cols = {{"b", 20}, {"a", 10}} },
      T.put{ pk = {{"id", 3}}, cols = {{"b", 200}} },
    }
    local got = {}
    for _, r in b:iter() do got[#got + 1] = tostring(r:get("a")) .. "/" .. tostring(r:get("b")) end
    assert.are.same({ "1/2", "10/20", "nil/200" }, got)
  end)

  it("handles empty and binary names", function()
    local r = T.put{ pk = {{"id", 1}}, cols = {{"", "empty"}, {"n\0ul", "nul"}} }
    assert.are.equal("empty", r:get(""))
    assert.are.equal("nul", r:get("n\0ul"))
    assert.is_nil(r:get("n"))
  end)
end)
