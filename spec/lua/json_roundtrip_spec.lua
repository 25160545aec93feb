-- r:tojson() is exact: every record survives r:tojson() -> lunnel.json -> lunnel.testing
-- unchanged (same JSON, same tostring), for every golden PlainBuffer vector (encoded by the
-- official Node.js SDK: the bytes in fuzz/corpus/plainbuffer/, their expected decoding in
-- tests/fixtures/plainbuffer_vectors_manifest.json, both copied from the team's shared vectors) and for
-- generated records of every value type and every cell op.
local ffi = require("ffi")
local T = require("lunnel.testing")
local J = require("lunnel.json")
local record = require("lunnel.record")
local C = record.C

local read = require("support.files").read

-- The record of one bare PlainBuffer file, decoded by lunnel's C decoder as the host decodes
-- such a payload (action DELETE for a row with the delete marker, else PUT); the padding the
-- SDK may send after the row is left out of the range.
local function vector_records(bytes, v)
  local size = #bytes - (v.padding or 0)
  local data = ffi.new("uint8_t[?]", #bytes)
  ffi.copy(data, bytes, #bytes)
  local rg = ffi.new("lunnel_record_range[1]")
  rg[0].offset, rg[0].len = 0, size
  rg[0].action = v.delete_marker and 3 or 1
  local arena = ffi.gc(C.lunnel_arena_new(), C.lunnel_arena_free)
  local out = ffi.new("const lunnel_batch *[1]")
  local err = ffi.new("lunnel_codec_error")
  local rc = C.lunnel_pb_decode_batch(arena, data, size, rg, 1, 0, out, err)
  assert(rc == 0, "decode failed: " .. ffi.string(err.message))
  local b = record.wrap(out[0])
  local recs = {}
  for _, r in b:iter() do recs[#recs + 1] = r end
  return recs, { arena, data }
end

local function round_trip(r)
  local j = r:tojson()
  local spec = J.record(j)
  local r2 = T.batch{ spec }[1]
  assert.are.equal(j, r2:tojson())
  assert.are.equal(tostring(r), tostring(r2))
  assert.are.equal(r:key(), r2:key())
  return j
end

describe("r:tojson() round trip through lunnel.json", function()
  local dir = "fuzz/corpus/plainbuffer"
  local manifest = J.decode(read(os.getenv("LUNNEL_VECTORS_MANIFEST")
                                 or "tests/fixtures/plainbuffer_vectors_manifest.json"))
  for _, v in ipairs(manifest.vectors) do
    if not v.error then
      it("keeps every fact of vector " .. v.file, function()
        local recs, keep = vector_records(read(dir .. "/" .. v.file), v)
        assert.is_true(#recs >= 1)
        for _, r in ipairs(recs) do
          local j = round_trip(r)
          -- the manifest's facts appear in the JSON: each cell's op and type
          local t = J.decode(j, { exact = true })
          for _, c in ipairs(v.cols) do
            local name, typ, op = c[1], c[2], c[4]
            if typ == "BINARY" then
              assert.is_truthy(j:find('"' .. name .. '":{"binary":', 1, true), name)
            end
            if op ~= "PUT" or c[5] then assert.is_truthy(t.cells, "cells for " .. name) end
          end
        end
        assert.is_truthy(keep)
      end)
    end
  end

  it("keeps every value type and cell op of generated records", function()
    local big = ffi.new("int64_t", -9223372036854775807LL) - 1
    local recs = {
      T.put{ pk = {{"id", 1}, {"k", "a"}, {"b", T.binary("\0\255")}},
             cols = { s = "text", i = 42, n = -7, d = T.double(3), f = 0.1, t = true, x = false,
                      e = "", z = T.binary(""), u = "h\195\169llo \226\130\172" } },
      T.put{ pk = {{"id", big}}, cols = {{"max", ffi.new("int64_t", 9223372036854775807LL)},
                                          {"over53", 2 ^ 53 + 2}, {"tiny", T.double(5e-324)},
                                          {"huge", T.double(1e308)}, {"neg0", T.double(-0.0)},
                                          {"nan", T.double(0 / 0)}, {"inf", T.double(1 / 0)},
                                          {"ninf", T.double(-1 / 0)}} },
      T.put{ pk = {{"id", 2}}, cols = {{"bad_utf8", "a\255\254b"}, {"nul", "a\0b"},
                                        {"ctl", "\1\27\127"}} },
      T.update{ pk = {{"id", 3}},
                cols = {{"p", "v", op = "PUT", ts = 1700000000123},
                        {"one", nil, op = "DELETE_ONE_VERSION", ts = 1700000000000},
                        {"all", nil, op = "DELETE_ALL_VERSIONS"},
                        {"inc", 5, op = "INCREMENT"},
                        {"p", "again", op = "PUT"}},
                old = {{"p", "before", op = "PUT", ts = 1600000000000}, {"q", T.binary("\1")}},
                seq = { epoch = 7, timestamp = 1700000000000123, row_index = 4 } },
      T.update{ pk = {{"id", 4}}, cols = { v = "w" }, delete = {"gone", "also"} },
      T.update{ pk = {{"id", 5}}, cols = {{"d", nil, op = "DELETE_ALL_VERSIONS"}, {"v", 1}} },
      T.delete{ pk = {{"id", 6}, {"lo", T.INF_MIN}, {"hi", T.INF_MAX}} },
      T.put{ pk = {{"id", 7}}, cols = {}, seq = false },
    }
    for _, r in ipairs(recs) do round_trip(r) end
    -- one line holding every case, read back as a batch of JSON Lines
    local lines = {}
    for _, r in ipairs(recs) do lines[#lines + 1] = r:tojson() end
    local b = J.batch(table.concat(lines, "\n") .. "\n")
    assert.are.equal(#recs, #b)
    for i, r in ipairs(recs) do assert.are.equal(r:tojson(), b[i]:tojson()) end
  end)

  it("reads the record of a dead-letter line", function()
    local r = T.put{ pk = {{"id", 9}}, cols = { v = T.binary("\0") } }
    local line = '{"time":"x","channel_id":"c","index":1,"error":"boom","record":' .. r:tojson() .. '}'
    assert.are.equal(r:tojson(), T.batch{ J.record(line) }[1]:tojson())
    assert.has_error(function() J.record('{"record_base64":"AAA=","decode_error":"bad"}') end)
  end)

  it("decodes JSON exactly", function()
    local t = J.decode('{"b":1,"a":[1,null,3],"big":9223372036854775807,"min":-9223372036854775808,"f":1.5,"s":"\\u00e9\\ud83d\\ude00\\n"}')
    assert.are.same({ "b", "a", "big", "min", "f", "s" }, J.keys(t))
    assert.are.equal(3, t.a.n)
    assert.is_nil(t.a[2])
    assert.are.equal("9223372036854775807LL", tostring(t.big))
    assert.are.equal("-9223372036854775808LL", tostring(t.min))
    assert.are.equal(1.5, t.f)
    assert.are.equal("\195\169\240\159\152\128\n", t.s)
    assert.has_error(function() J.decode('{"a":1') end)
    assert.has_error(function() J.decode('[1,]') end)
    assert.has_error(function() J.decode('9223372036854775808') end)
    assert.has_error(function() J.decode('1 2') end)
  end)
end)

describe("lunnel.json on damaged input", function()
  it("raises a clear error or returns, never anything else (seeded mutations)", function()
    local r = T.update{ pk = {{"id", 1}}, cols = {{"b", T.binary("\0\1")}, {"d", T.double(2)},
                                                  {"x", nil, op = "DELETE_ONE_VERSION", ts = 5}},
                        old = {{"s", "o"}} }
    local line = r:tojson()
    math.randomseed(1234)
    local odd = 0
    for _ = 1, 2000 do
      local s = line
      for _ = 1, math.random(1, 4) do
        local at = math.random(1, #s)
        local kind = math.random(1, 3)
        if kind == 1 then
          s = s:sub(1, at - 1) .. s:sub(at + 1)
        elseif kind == 2 then
          s = s:sub(1, at - 1) .. string.char(math.random(0, 255)) .. s:sub(at + 1)
        else
          s = s:sub(1, at)
        end
      end
      local ok, err = pcall(J.record, s)
      if not ok and not (type(err) == "string" and err:find("lunnel.json", 1, true)) then
        odd = odd + 1
        if odd < 4 then print("unclear error for " .. s .. ": " .. tostring(err)) end
      end
    end
    assert.equal(0, odd)
    assert.has_error(function() J.decode(("["):rep(300) .. ("]"):rep(300)) end, nil)
  end)
end)

describe("tostring(r)", function()
  it("escapes bytes a terminal would act on", function()
    local r = T.put{ pk = {{"id", 1}}, cols = {{"s", "a\27[2J\0\255é"}, {"b", T.binary("\0\1A")}} }
    local s = tostring(r)
    assert.is_nil(s:find("[%z\1-\31\127\255]"))
    assert.is_truthy(s:find('s="a\\x1B[2J\\x00\\xFFé"', 1, true))
    assert.is_truthy(s:find('b=b"\\x00\\x01A"', 1, true))
  end)
end)
