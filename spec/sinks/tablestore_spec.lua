-- tablestore_spec: lunnel.sinks.tablestore against a real lunnel-emulator (started here on
-- 127.0.0.1 with a free port). Batches built by lunnel.testing are replicated; what the
-- emulator applied is read back from its change log (admin "changes": each applied row, whose
-- bytes are decoded here with liblunnel to see ops and timestamps). Also: same-key splitting,
-- the 200-row limit, retries through 503s, and failures that must raise (missing table, bad
-- signature, connection refused, stale views). The full `lunnel run` path is covered by
-- tests/node/sink_tablestore.test.mjs (target table read back with the Node.js SDK).
local T = require("lunnel.testing")
local tablestore = require("lunnel.sinks.tablestore")
local native = require("lunnel.sinks.native")
local record = require("lunnel.record")
local cjson = require("cjson")
local ffi = require("ffi")
local C = native.C

local pid, endpoint
local AK, SK, INSTANCE = "lunnel-ak", "lunnel-secret", "lunnel"

-- A signed admin call (POST /_emulator/<action>, JSON) through the sink's own C helpers.
local function admin(action, body)
  local h = ffi.gc(C.lunnel_sink_http_new(), C.lunnel_sink_http_free)
  local path = "/_emulator/" .. action
  local b = cjson.encode(body or {})
  local hdr = ffi.new("char[2048]")
  assert(C.lunnel_sink_ots_headers(path, INSTANCE, AK, SK, nil, b, #b, hdr, 2048) == 0)
  local st = ffi.new("long[1]")
  assert(C.lunnel_sink_http_post(h, endpoint .. path, hdr, b, #b, 10000, nil, st) == 0,
         ffi.string(C.lunnel_sink_http_error(h)))
  local n = ffi.new("size_t[1]")
  local p = C.lunnel_sink_http_body(h, n)
  local text = ffi.string(p, n[0])
  assert(st[0] == 200, "admin " .. action .. ": " .. tonumber(st[0]) .. " " .. text)
  return cjson.decode(text)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function unb64(s)
  local map = {}
  for i = 1, 64 do map[B64:sub(i, i)] = i - 1 end
  local out, bits, n = {}, 0, 0
  for ch in s:gmatch("[^=]") do
    bits = bits * 64 + map[ch]
    n = n + 6
    if n >= 8 then
      n = n - 8
      local byte = math.floor(bits / 2 ^ n) % 256
      out[#out + 1] = string.char(byte)
      bits = bits % 2 ^ n
    end
  end
  return table.concat(out)
end

-- The changes the emulator applied to `table`: {action, pk = {...}, cols = {{name, value, op, ts}}}.
local function applied(table_name)
  local r = admin("changes", { table = table_name, limit = 10000 })
  local out = {}
  for _, ch in ipairs(r.changes) do
    local bytes = unb64(ch.row_b64)
    local data = ffi.new("uint8_t[?]", #bytes)
    ffi.copy(data, bytes, #bytes)
    local rg = ffi.new("lunnel_record_range[1]")
    rg[0].offset, rg[0].len, rg[0].action = 0, #bytes, 1
    local arena = ffi.gc(C.lunnel_arena_new(), C.lunnel_arena_free)
    local bp = ffi.new("const lunnel_batch *[1]")
    local err = ffi.new("lunnel_codec_error")
    assert(C.lunnel_pb_decode_batch(arena, data, #bytes, rg, 1, 0, bp, err) == 0, ffi.string(err.message))
    local rec = record.wrap(bp[0])[1]
    local cols = {}
    for name, v, op, ts in rec:columns() do cols[#cols + 1] = { name, v, op, ts } end
    out[#out + 1] = { action = ch.action, pk = rec:key(), cols = cols }
  end
  return out
end

local function new_sink(over)
  local o = { endpoint = endpoint, instance = INSTANCE, table = "t", access_key_id = AK,
              access_key_secret = SK, retries = 3, backoff = 0.01 }
  for k, v in pairs(over or {}) do o[k] = v end
  return tablestore.new(o)
end

local function create(table_name)
  admin("load", { table = table_name, rows = 0, create = true })
end

local scratch
setup(function()
  -- the end-to-end harness starts it (tests/harness/cli.mjs: free port, ready line awaited
  -- with a deadline); node runs without the sanitizer runtime preloaded (not instrumented),
  -- and the emulator's life is bounded (timeout) even if this spec dies before teardown
  scratch = assert(io.popen("mktemp -d")):read("*l")
  local src = os.getenv("LUNNEL_SOURCE_DIR") or "."
  local cli = assert(io.popen("env -u LD_PRELOAD node " .. src .. "/tests/harness/cli.mjs emulator --dir "
    .. scratch .. " --lifetime-s 300", "r"))
  local line = cli:read("*l") or ""
  cli:close()
  local port
  port, pid = line:match("^(%d+) (%d+)$")
  assert(port, "lunnel-emulator did not start (tests/harness/cli.mjs printed: " .. line .. ")")
  endpoint = "http://127.0.0.1:" .. port
end)

teardown(function()
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  if scratch then os.execute("rm -rf " .. scratch) end
end)

describe("lunnel.sinks.tablestore", function()
  it("replays puts, updates (put / delete one version / delete all) and deletes with timestamps", function()
    create("faithful")
    local s = new_sink{ table = "faithful" }
    s:write_batch(T.batch{
      T.put{ pk = {{"id", 1}}, cols = {{"a", "x", ts = 1000}, {"n", ffi.new("int64_t", 2) ^ 62, ts = 1001},
                                        {"d", T.double(2.5), ts = 1002}, {"b", true, ts = 1003},
                                        {"z", T.binary("\0\1\255"), ts = 1004}} },
      T.update{ pk = {{"id", 2}}, cols = {{"a", "y", ts = 2000}, {"old", nil, op = "DELETE_ONE_VERSION", ts = 1500},
                                           {"gone", nil, op = "DELETE_ALL_VERSIONS"}} },
      T.delete{ pk = {{"id", 3}} },
    })
    local got = applied("faithful")
    assert.are.equal(3, #got)
    assert.are.equal("PUT", got[1].action)
    assert.same({ { "a", "x", "PUT", 1000 }, { "n", ffi.new("int64_t", 2) ^ 62, "PUT", 1001 },
                  { "d", 2.5, "PUT", 1002 }, { "b", true, "PUT", 1003 }, { "z", "\0\1\255", "PUT", 1004 } },
                got[1].cols)
    assert.are.equal("UPDATE", got[2].action)
    assert.same({ { "a", "y", "PUT", 2000 }, { "old", nil, "DELETE_ONE_VERSION", 1500 },
                  { "gone", nil, "DELETE_ALL_VERSIONS", nil } }, got[2].cols)
    assert.are.equal("DELETE", got[3].action)
    assert.are.equal("i3", got[3].pk)
    assert.are.equal(3, s.rows)
    assert.are.equal(1, s.requests)
  end)

  it("never puts two changes of one key in a request, so per-key order holds", function()
    create("order")
    local s = new_sink{ table = "order" }
    s:write_batch(T.batch{
      T.put{ pk = {{"id", 1}}, cols = {v = "first"} },
      T.put{ pk = {{"id", 2}}, cols = {v = "other"} },
      T.delete{ pk = {{"id", 1}} },
      T.put{ pk = {{"id", 1}}, cols = {v = "third"} },
    })
    assert.are.equal(3, s.requests)
    local got = applied("order")
    local ones = {}
    for _, g in ipairs(got) do if g.pk == "i1" then ones[#ones + 1] = g.action .. ":" .. tostring(g.cols[1] and g.cols[1][2]) end end
    assert.same({ "PUT:first", "DELETE:nil", "PUT:third" }, ones)
  end)

  it("splits more than 200 rows into several requests and skips empty updates", function()
    create("many")
    local s = new_sink{ table = "many" }
    local list = {}
    for i = 1, 450 do list[#list + 1] = T.put{ pk = {{"id", i}}, cols = {v = i} } end
    list[#list + 1] = T.update{ pk = {{"id", 9999}}, cols = {} }
    s:write_batch(T.batch(list))
    assert.are.equal(3, s.requests)
    assert.are.equal(450, s.rows)
    assert.are.equal(1, s.skipped)
    assert.are.equal(450, #applied("many"))
  end)

  it("retries through 503s and applies the rows once", function()
    create("flaky")
    admin("faults", { path = "/BatchWriteRow", error_rate = 1, count = 2 })
    local s = new_sink{ table = "flaky", retries = 5 }
    s:write_batch(T.batch{ T.put{ pk = {{"id", 1}}, cols = {v = 1} } })
    assert.are.equal(3, s.attempts)
    assert.are.equal(1, #applied("flaky"))
  end)

  it("raises, without retrying, when the target table does not exist", function()
    local s = new_sink{ table = "nosuch", retries = 5 }
    local ok, err = pcall(s.write_batch, s, T.batch{ T.put{ pk = {{"id", 1}}, cols = {v = 1} } })
    assert.is_false(ok)
    assert.matches("nosuch: row 0: OTSObjectNotExist: .*request id", err)
    assert.are.equal(1, s.attempts)
    -- the sink is usable again afterwards (the failed rows were dropped with the error)
    create("nosuch")
    s:write_batch(T.batch{ T.put{ pk = {{"id", 2}}, cols = {v = 2} } })
    assert.are.equal(1, #applied("nosuch"))
  end)

  it("raises on a bad signature with the service's code and status", function()
    create("auth")
    local s = new_sink{ table = "auth", access_key_secret = "wrong", retries = 3 }
    local ok, err = pcall(s.write_batch, s, T.batch{ T.put{ pk = {{"id", 1}}, cols = {v = 1} } })
    assert.is_false(ok)
    assert.matches("status 403: OTSAuthFailed", err)
    assert.are.equal(1, s.attempts)
  end)

  it("raises after the retries when nothing answers", function()
    local s = new_sink{ endpoint = "http://127.0.0.1:1", retries = 2 }
    local ok, err = pcall(s.write_batch, s, T.batch{ T.put{ pk = {{"id", 1}}, cols = {v = 1} } })
    assert.is_false(ok)
    assert.matches("BatchWriteRow failed after 3 attempt%(s%)", err)
  end)

  it("refuses stale views and bad options", function()
    local s = new_sink{}
    local b = T.batch{ T.put{ pk = {{"id", 1}}, cols = {v = 1} } }
    local r = b[1]
    T.invalidate(b)
    assert.has_error(function() s:write(r) end)
    assert.has_error(function() tablestore.new{ endpoint = endpoint, instance = INSTANCE } end)
    assert.has_error(function() tablestore.new{ endpoint = "ftp://x", instance = "i", table = "t", access_key_id = "a", access_key_secret = "b" } end)
  end)
end)

describe("examples/replicate.lua", function()
  it("replicates each batch into the configured table", function()
    create("ex_target")
    -- lunnel run passes credentials in the environment: do the same
    pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
    ffi.C.setenv("TABLESTORE_ACCESS_KEY_ID", AK, 1)
    ffi.C.setenv("TABLESTORE_ACCESS_KEY_SECRET", SK, 1)
    local s = T.load("examples/replicate.lua", { custom = { endpoint = endpoint, instance = INSTANCE, table = "ex_target",
                                                             retries = 1, backoff = 0.01 } })
    s:process{ T.put{ pk = {{"id", 5}}, cols = {v = "five"} }, T.delete{ pk = {{"id", 6}} } }
    local got = applied("ex_target")
    assert.are.equal(2, #got)
    assert.are.equal("DELETE", got[2].action)
  end)
end)
