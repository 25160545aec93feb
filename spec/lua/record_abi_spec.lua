-- record_abi_spec: lua/lunnel/record.lua's cdef matches runtime/include/lunnel/record.h as
-- compiled into liblunnel.so (every size and offset, via lunnel_record_abi_layout), the ABI
-- versions agree, and the module is cdef'd/metatyped once even when required again.
local ffi = require("ffi")
local record = require("lunnel.record")
require("lunnel.testing") -- declares the codec.h / plainbuffer.h structs checked below

local layout = {
  value = { "type", "len", "u" },
  column = { "name", "name_len", "name_hash", "name_prefix", "timestamp", "op", "has_timestamp", "value" },
  record = { "pk", "cols", "old", "pk_count", "col_count", "old_count", "action",
             "delete_marker", "has_seq", "has_old", "seq_timestamp", "seq_epoch",
             "seq_row_index", "offset", "size" },
  batch = { "records", "count", "generation", "live_generation", "data", "size" },
  batch_ref = { "b", "live", "gen" },
  record_ref = { "r", "live", "gen", "index" },
  -- declared again by lua/lunnel/testing.lua (codec.h / plainbuffer.h)
  record_range = { "origin_offset", "action", "has_origin" },
  codec_error = { "offset", "message" },
  pb_writer = { "len", "error", "state" },
}

describe("record view ABI", function()
  it("has the library's ABI version", function()
    assert.are.equal(record.ABI_VERSION, tonumber(record.C.lunnel_record_abi_version()))
  end)

  for typ, fields in pairs(layout) do
    it("matches sizeof and offsetof of lunnel_" .. typ, function()
      local ct = "lunnel_" .. typ
      assert.are.equal(record.layout(typ), ffi.sizeof(ct), "sizeof " .. ct)
      for _, f in ipairs(fields) do
        assert.are.equal(record.layout(typ, f), ffi.offsetof(ct, f), ct .. "." .. f)
      end
    end)
  end

  it("knows when a name is unknown", function()
    assert.are.equal(-1, record.layout("record", "no_such_field"))
    assert.are.equal(-1, record.layout("nope"))
  end)

  it("is loaded once: a second require (as busted or hot reload would) returns the same module", function()
    package.loaded["lunnel.record"] = nil
    local again = require("lunnel.record")
    assert.are.equal(record, again)
  end)
end)
