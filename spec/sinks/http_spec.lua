-- http_spec: lunnel.sinks.http against a local receiver (spec/sinks/http_server.mjs, node on
-- 127.0.0.1): a batch arrives as a JSON array of exact records, custom projections and
-- headers, retries through 503s, and failure (5xx past the retries, 4xx at once, connection
-- refused, timeout) raises so the batch is not checkpointed. Also examples/post_http.lua.
local T = require("lunnel.testing")
local http = require("lunnel.sinks.http")
local cjson = require("cjson")
local ffi = require("ffi")

local server, base

local function received()
  local s = http.new{ url = base .. "/_received", retries = 0 }
  local _, body = s:post("{}")
  return cjson.decode(body)
end

setup(function()
  local src = os.getenv("LUNNEL_SOURCE_DIR") or "."
  server = assert(io.popen("exec node " .. src .. "/spec/sinks/http_server.mjs", "r"))
  local line = server:read("*l")
  local port = line and line:match("^listening (%d+)$")
  assert(port, "the test HTTP server did not start: " .. tostring(line))
  base = "http://127.0.0.1:" .. port
end)

teardown(function()
  if base then pcall(function() http.new{ url = base .. "/_quit", retries = 0 }:post("{}") end) end
  if server then server:close() end
end)

local function batch()
  return T.batch{
    T.put{ pk = {{"id", 1}, {"k", "a"}}, cols = {n = ffi.new("int64_t", 2) ^ 60, s = "x"} },
    T.update{ pk = {{"id", 2}, {"k", "b"}}, cols = {s = "y"}, delete = {"gone"} },
    T.delete{ pk = {{"id", 3}, {"k", "c"}} },
  }
end

describe("lunnel.sinks.http", function()
  it("POSTs a batch as a JSON array of exact records, with extra headers", function()
    local s = http.new{ url = base .. "/ok", headers = { ["X-Test-Auth"] = "secret-1" } }
    assert.are.equal(3, s:post_batch(batch()))
    local got = received().kept["/ok"]
    assert.are.equal(1, #got)
    assert.matches('"n":1152921504606846976', got[1].body, 1, true)
    local arr = cjson.decode(got[1].body)
    assert.are.equal(3, #arr)
    assert.same({ "PUT", "UPDATE", "DELETE" }, { arr[1].action, arr[2].action, arr[3].action })
    assert.same({ "gone" }, arr[2].deleted)
    assert.are.equal("application/json", got[1].type)
    assert.are.equal("secret-1", got[1].auth)
  end)

  it("projects records through a function and skips nil", function()
    local s = http.new{ url = base .. "/ok" }
    local n = s:post_batch(batch(), function(r)
      if r.action ~= "DELETE" then return { id = r.pk.id, action = r.action } end
    end)
    assert.are.equal(2, n)
    local got = received().kept["/ok"]
    assert.same({ { id = 1, action = "PUT" }, { id = 2, action = "UPDATE" } }, cjson.decode(got[#got].body))
    assert.are.equal(0, s:post_batch(batch(), function() return nil end))
    assert.are.equal(#got, #received().kept["/ok"]) -- nothing sent for an empty projection
  end)

  it("retries through 503s with backoff and delivers once", function()
    local s = http.new{ url = base .. "/flaky/3", retries = 5, backoff = 0.01 }
    s:post_batch(batch())
    local r = received()
    assert.are.equal(4, r.hits["/flaky/3"])
    assert.are.equal(1, #r.kept["/flaky/3"])
    assert.are.equal(4, s.attempts)
  end)

  it("fails the batch when the receiver stays down past the retries", function()
    local s = http.new{ url = base .. "/down", retries = 2, backoff = 0.01 }
    local ok, err = pcall(s.post_batch, s, batch())
    assert.is_false(ok)
    assert.matches("POST .*/down failed: status 500: broken backend", err)
    assert.are.equal(3, received().hits["/down"])
    assert.are.equal(1, s.failures)
  end)

  it("does not retry a 4xx refusal", function()
    local s = http.new{ url = base .. "/reject", retries = 5, backoff = 0.01 }
    local ok, err = pcall(s.post_batch, s, batch())
    assert.is_false(ok)
    assert.matches("status 400: bad body", err)
    assert.are.equal(1, received().hits["/reject"])
  end)

  it("fails on connection refused and on timeout", function()
    -- a port nobody listens on: bind-and-close is racy, port 1 on loopback is refused
    local s = http.new{ url = "http://127.0.0.1:1/x", retries = 1, backoff = 0.01, timeout = 2 }
    local ok, err = pcall(s.post, s, "[]")
    assert.is_false(ok)
    assert.matches("POST http://127.0.0.1:1/x failed: .*", err)
    local slow = http.new{ url = base .. "/slow", retries = 0, timeout = 0.3 }
    local t0 = os.time()
    ok, err = pcall(slow.post, slow, "[]")
    assert.is_false(ok)
    assert.matches("/slow failed: .*timed out", err)
    assert.is_true(os.time() - t0 <= 2)
  end)

  it("rejects bad options", function()
    assert.has_error(function() http.new{} end)
    assert.has_error(function() http.new{ url = "ftp://x" } end)
    assert.has_error(function() http.new{ url = base, headers = { ["Bad\nName"] = "v" } } end)
  end)
end)

describe("examples/post_http.lua", function()
  it("posts every batch and raises when the endpoint fails", function()
    local s = T.load("examples/post_http.lua", { channel_id = "ch-9", custom = { url = base .. "/ok", retries = 0 } })
    s:process{ T.put{ pk = {{"id", 7}}, cols = {v = "seven"} } }
    local got = received().kept["/ok"]
    local body = cjson.decode(got[#got].body)
    assert.are.equal(7, body[1].pk.id)
    assert.are.equal("seven", body[1].cols.v)
    local bad = T.load("examples/post_http.lua", { custom = { url = base .. "/down", retries = 1, backoff = 0.01 } })
    assert.has_error(function() bad:process{ T.put{ pk = {{"id", 8}}, cols = {v = 1} } } end)
  end)
end)
