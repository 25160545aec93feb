-- lunnel: what a transform script may require. `local lunnel = require("lunnel")` gives
--   lunnel.record     the record-view module (wrap, value sentinels, type/op/action names)
--   lunnel.INF_MIN, lunnel.INF_MAX, lunnel.NULL, lunnel.AUTO_INCREMENT   value sentinels
--   lunnel.is_record(x), lunnel.is_batch(x)
--   lunnel.json       a private lua-cjson instance (sparse arrays allowed, 14 significant
--                     digits, lua-cjson's maximum); use r:tojson() for exact whole records
--   lunnel.testing    (lazy) the busted helpers of lua/lunnel/testing.lua
-- Scripts get records only through process(ctx, batch); nothing here does I/O.
local record = require("lunnel.record")

local M = {
  record = record,
  INF_MIN = record.INF_MIN,
  INF_MAX = record.INF_MAX,
  NULL = record.NULL,
  AUTO_INCREMENT = record.AUTO_INCREMENT,
  is_record = record.is_record,
  is_batch = record.is_batch,
  ABI_VERSION = record.ABI_VERSION,
}

local ok, cjson = pcall(require, "cjson")
if ok then
  local json = cjson.new()
  json.encode_sparse_array(true)
  json.encode_number_precision(14) -- the maximum lua-cjson allows; exact numbers: r:tojson()
  M.json = json
end

return setmetatable(M, {
  __index = function(t, k)
    if k == "testing" then
      local testing = require("lunnel.testing")
      rawset(t, k, testing)
      return testing
    end
  end,
})
