-- lunnel.json: reads what lunnel writes. r:tojson() lines (from lunnel.sinks.jsonl, the
-- "record" field of dead-letter lines, your own logs) become the record specs lunnel.testing
-- builds, so recorded production data turns into busted fixtures:
--
--   local J = require("lunnel.json")
--   local T = require("lunnel.testing")
--   local spec = J.record('{"action":"PUT","pk":{"id":1},"cols":{"v":"x"}}')
--   local r = T.batch{ spec }[1]              -- the very record lunnel run decoded
--   local batch = J.batch(io.open("orders.jsonl"):read("*a"))  -- every line of a file
--   script:process(batch)
--
-- J.decode(text) is a general JSON reader that keeps what r:tojson() relies on: integers keep
-- all 64 bits (int64_t cdata beyond 2^53), object key order is kept (J.keys(obj)), and with
-- J.decode(text, {exact = true}) numbers written with '.' or an exponent come back as
-- J.is_float-marked values {float = x}. The record shape is documented in docs/scripts.md
-- ("r:tojson() format") and runtime/include/lunnel/record.h.
local ffi = require("ffi")

local M = {}

local int64_t = ffi.typeof("int64_t")
local MAX_EXACT = 2 ^ 53
local FLOAT_MT = {}
local order = setmetatable({}, { __mode = "k" }) -- object -> its keys in text order

function M.keys(obj) return order[obj] or {} end
function M.is_float(x) return type(x) == "table" and getmetatable(x) == FLOAT_MT end

-- ---- the reader ------------------------------------------------------------------------
local byte, sub, find, char = string.byte, string.sub, string.find, string.char

local function fail(s, i, what)
  local line = select(2, sub(s, 1, i):gsub("\n", "")) + 1
  error(("lunnel.json: %s at byte %d (line %d)"):format(what, i, line), 0)
end

local function skip(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
              0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function read_string(s, i) -- s[i] == '"'
  local out, n = {}, 0
  local j = i + 1
  while true do
    local a = find(s, '["\\]', j)
    if not a then fail(s, i, "unterminated string") end
    n = n + 1
    out[n] = sub(s, j, a - 1)
    if byte(s, a) == 34 then return table.concat(out), a + 1 end
    local e = sub(s, a + 1, a + 1)
    if e == "u" then
      local hex = sub(s, a + 2, a + 5)
      local cp = tonumber(hex, 16)
      if not cp or #hex ~= 4 then fail(s, a, "bad \\u escape") end
      j = a + 6
      if cp >= 0xD800 and cp <= 0xDBFF and sub(s, j, j + 1) == "\\u" then
        local lo = tonumber(sub(s, j + 2, j + 5), 16)
        if lo and lo >= 0xDC00 and lo <= 0xDFFF then
          cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
          j = j + 6
        end
      end
      n = n + 1
      out[n] = utf8_char(cp)
    else
      local c = escapes[e]
      if not c then fail(s, a, "bad escape") end
      n = n + 1
      out[n] = c
      j = a + 2
    end
  end
end

-- An integer literal with every digit kept: a Lua number when exact, else int64_t.
local function integer(text, s, i)
  local v = tonumber(text)
  if v and v <= MAX_EXACT and v >= -MAX_EXACT then return v end
  local neg = sub(text, 1, 1) == "-"
  local digits = neg and sub(text, 2) or text
  if #digits > 19 then fail(s, i, "integer out of 64-bit range") end
  local acc = int64_t(0)
  for k = 1, #digits do
    acc = acc * 10 - (byte(digits, k) - 48) -- accumulate negatively: INT64_MIN fits
    if acc > 0 then fail(s, i, "integer out of 64-bit range") end
  end
  if not neg then
    if acc == int64_t(-9223372036854775807LL) - 1 then fail(s, i, "integer out of 64-bit range") end
    acc = -acc
  end
  return acc
end

local read_value

local function read_number(s, i, exact)
  local _, e = find(s, "^-?%d+", i)
  if not e then fail(s, i, "unexpected character") end
  local _, fe = find(s, "^%.%d+", e + 1)
  local _, ee = find(s, "^[eE][-+]?%d+", (fe or e) + 1)
  local last = ee or fe or e
  local text = sub(s, i, last)
  if fe or ee then
    local x = tonumber(text)
    if exact then x = setmetatable({ float = x }, FLOAT_MT) end
    return x, last + 1
  end
  return integer(text, s, i), last + 1
end

function read_value(s, i, exact, depth)
  if depth > 200 then fail(s, i, "nesting too deep") end
  i = skip(s, i)
  local c = byte(s, i)
  if c == 34 then return read_string(s, i) end
  if c == 123 then -- {
    local obj, keys = {}, {}
    order[obj] = keys
    i = skip(s, i + 1)
    if byte(s, i) == 125 then return obj, i + 1 end
    while true do
      if byte(s, i) ~= 34 then fail(s, i, "object key expected") end
      local k
      k, i = read_string(s, i)
      i = skip(s, i)
      if byte(s, i) ~= 58 then fail(s, i, "':' expected") end
      local v
      v, i = read_value(s, i + 1, exact, depth + 1)
      if obj[k] == nil then keys[#keys + 1] = k end
      obj[k] = v
      i = skip(s, i)
      local d = byte(s, i)
      if d == 125 then return obj, i + 1 end
      if d ~= 44 then fail(s, i, "',' or '}' expected") end
      i = skip(s, i + 1)
    end
  end
  if c == 91 then -- [
    local arr, n = {}, 0
    i = skip(s, i + 1)
    if byte(s, i) == 93 then return arr, i + 1 end
    while true do
      local v
      v, i = read_value(s, i, exact, depth + 1)
      n = n + 1
      arr[n] = v -- nil for null: arrays of r:tojson() keep their length through arr.n
      i = skip(s, i)
      local d = byte(s, i)
      if d == 93 then arr.n = n; return arr, i + 1 end
      if d ~= 44 then fail(s, i, "',' or ']' expected") end
      i = i + 1
    end
  end
  if sub(s, i, i + 3) == "true" then return true, i + 4 end
  if sub(s, i, i + 4) == "false" then return false, i + 5 end
  if sub(s, i, i + 3) == "null" then return nil, i + 4 end
  if c == nil then fail(s, i, "unexpected end of input") end
  return read_number(s, i, exact)
end

-- Decodes one JSON text (null -> nil, arrays carry .n). opts.exact: floats marked.
function M.decode(text, opts)
  if type(text) ~= "string" then error("lunnel.json.decode: a string is needed", 2) end
  local v, i = read_value(text, 1, opts and opts.exact, 0)
  i = skip(text, i)
  if i <= #text then fail(text, i, "trailing characters") end
  return v
end

-- ---- base64 ----------------------------------------------------------------------------
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64val = {}
for k = 1, 64 do b64val[byte(B64, k)] = k - 1 end

function M.base64_decode(s)
  if #s % 4 ~= 0 then error("lunnel.json: base64 length is not a multiple of 4", 0) end
  local out, n = {}, 0
  for k = 1, #s, 4 do
    local a, b, c, d = byte(s, k, k + 3)
    local va, vb = b64val[a], b64val[b]
    local vc, vd = c == 61 and 0 or b64val[c], d == 61 and 0 or b64val[d]
    if not (va and vb and vc and vd) then error("lunnel.json: bad base64", 0) end
    local v = ((va * 64 + vb) * 64 + vc) * 64 + vd
    n = n + 1
    out[n] = char(math.floor(v / 65536), math.floor(v / 256) % 256, v % 256)
    if d == 61 then out[n] = sub(out[n], 1, c == 61 and 1 or 2) end
  end
  return table.concat(out)
end

-- ---- records ---------------------------------------------------------------------------
local T -- lunnel.testing, loaded on first use (it needs liblunnel.so)
local function testing()
  T = T or require("lunnel.testing")
  return T
end

local SPECIAL_DOUBLE = { NaN = 0 / 0, Infinity = 1 / 0, ["-Infinity"] = -1 / 0 }

-- A value of the r:tojson() form -> what lunnel.testing encodes as the same type.
local function value(v, where)
  local tv = type(v)
  if tv == "number" or tv == "string" or tv == "boolean" then return v end
  if tv == "cdata" then return v end
  if M.is_float(v) then return testing().double(v.float) end
  if tv == "table" then
    if v.binary then return testing().binary(M.base64_decode(v.binary)) end
    if v.string_base64 then return M.base64_decode(v.string_base64) end
    if v.double then
      local d = SPECIAL_DOUBLE[v.double]
      if d then return testing().double(d) end
    end
    if v.inf == "MIN" then return testing().INF_MIN end
    if v.inf == "MAX" then return testing().INF_MAX end
  end
  error(("lunnel.json: %s: not a value of the r:tojson() form"):format(where), 0)
end

-- cols (+ deleted) or cells -> lunnel.testing's list {name, value, op = , ts = }.
local function cells_of(obj, cells, deleted, where)
  local list = {}
  if cells then
    for k = 1, cells.n or #cells do
      local c = cells[k]
      local v = c[3]
      list[#list + 1] = { c[1], v ~= nil and value(v, where .. "." .. tostring(c[1])) or nil,
                          op = c[2], ts = c[4] }
    end
    return list
  end
  for _, name in ipairs(M.keys(obj or {})) do
    list[#list + 1] = { name, value(obj[name], where .. "." .. name), op = "PUT" }
  end
  for _, name in ipairs(deleted or {}) do
    list[#list + 1] = { name, nil, op = "DELETE_ALL_VERSIONS" }
  end
  return list
end

-- One r:tojson() object (text, or already decoded with {exact = true}), or a dead-letter
-- line holding one in "record" -> a lunnel.testing spec: T.batch{spec} rebuilds the record.
function M.record(x)
  local t = x
  if type(x) == "string" then t = M.decode(x, { exact = true }) end
  if type(t) ~= "table" then error("lunnel.json.record: not a JSON object", 2) end
  if t.record_base64 then
    error("lunnel.json.record: a dead-letter line of bytes that did not decode ("
          .. tostring(t.decode_error) .. "): feed its record_base64 to lunnel replay", 2)
  end
  if t.record and t.action == nil then t = t.record end
  if type(t.action) ~= "string" or type(t.pk) ~= "table" then
    error("lunnel.json.record: not an r:tojson() object (needs action and pk)", 2)
  end
  local pk = {}
  for _, name in ipairs(M.keys(t.pk)) do pk[#pk + 1] = { name, value(t.pk[name], "pk." .. name) } end
  local spec = {
    action = t.action,
    pk = pk,
    cols = cells_of(t.cols, t.cells, t.deleted, "cols"),
    seq = false,
  }
  if t.old then spec.old = cells_of(t.old, t.old_cells, nil, "old") end
  if t.seq then
    spec.seq = { epoch = t.seq.epoch, timestamp = t.seq.timestamp, row_index = t.seq.row_index }
  end
  return spec
end

-- Every non-empty line of a JSON Lines text -> a list of specs (records and dead-letter
-- lines alike; a dead-letter line of a batch without records is skipped).
function M.records(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:find("%S") then
      local t = M.decode(line, { exact = true })
      if not (t.count == 0 and t.record == nil and t.record_base64 == nil) then
        out[#out + 1] = M.record(t)
      end
    end
  end
  return out
end

local MAX_BATCH = 1000 -- records per replayed batch when lines carry no batch of their own

-- For `lunnel replay`: JSON Lines (dead-letter files: one batch per channel_id + batch_token
-- run of lines, as they failed; r:tojson() files: batches of up to 1000 lines) -> a list of
-- {data = bytes, ranges = {offset, len, action, has_origin, origin_offset, origin_len, ...},
-- n = records, token = batch_token or nil, line = first line number}. Records are encoded
-- with lunnel's PlainBuffer writer; a dead-letter line of bytes that did not decode keeps
-- those bytes (the batch then fails to decode again, as it did).
function M.encode_lines(text)
  local groups, cur = {}, nil
  local lineno = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    if line:find("%S") then
      local ok, t = pcall(M.decode, line, { exact = true })
      if not ok then error(("line %d: %s"):format(lineno, t), 0) end
      local key = t.batch_token and ((t.channel_id or "") .. "\0" .. t.batch_token) or nil
      if not cur or cur.key ~= key or (key == nil and #cur.specs >= MAX_BATCH) then
        cur = { key = key, specs = {}, token = t.batch_token, line = lineno }
        groups[#groups + 1] = cur
      end
      if t.record_base64 then
        cur.specs[#cur.specs + 1] = { raw = M.base64_decode(t.record_base64) }
      elseif not (t.count == 0 and t.record == nil) then
        local ok2, spec = pcall(M.record, t)
        if not ok2 then error(("line %d: %s"):format(lineno, spec), 0) end
        cur.specs[#cur.specs + 1] = spec
      end
    end
  end
  local out = {}
  for _, g in ipairs(groups) do
    local bytes, ranges, n = testing().encode(g.specs)
    local flat = {}
    for i = 0, n - 1 do
      local r = ranges[i]
      local k = #flat
      flat[k + 1], flat[k + 2], flat[k + 3] = tonumber(r.offset), tonumber(r.len), tonumber(r.action)
      flat[k + 4], flat[k + 5], flat[k + 6] = tonumber(r.has_origin), tonumber(r.origin_offset),
                                              tonumber(r.origin_len)
    end
    out[#out + 1] = { data = bytes, ranges = flat, n = n, token = g.token, line = g.line }
  end
  return out
end

-- The lines as one batch, ready for script:process().
function M.batch(text)
  return testing().batch(M.records(text))
end

return M
