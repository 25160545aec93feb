-- testing_spec: lunnel.testing builds records through the real codec, drives scripts like the
-- host does (open, process per batch with a fresh token, views invalidated after each call,
-- shutdown), and its fake ctx records logs and commits.
local T = require("lunnel.testing")

local function script(path, src)
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

describe("lunnel.testing", function()
  it("builds records of every action", function()
    assert.are.equal("PUT", T.put{ pk = {{"id", 1}} }.action)
    assert.are.equal("UPDATE", T.update{ pk = {{"id", 1}}, delete = {"x"} }.action)
    local d = T.delete{ pk = {{"id", 1}} }
    assert.are.equal("DELETE", d.action)
    assert.is_true(d.delete_marker)
  end)

  it("rejects bad specs with a message", function()
    assert.has_error(function() T.put{} end)
    assert.has_error(function() T.put{ pk = {{"id", {}}} } end)
    assert.has_error(function() T.put{ pk = {{"id", 1}}, cols = {{"c", 1, op = "NOPE"}} } end)
    assert.has_error(function() T.batch{ {} } end)
  end)

  it("runs a script: open, process, shutdown, ctx fields, logs, commit", function()
    local path = script(os.tmpname(), [[
      local M = {}
      function M.open(ctx) ctx.state.opened = true end
      function M.process(ctx, batch)
        ctx.state.seen = (ctx.state.seen or 0) + #batch
        ctx.state.token = ctx.next_token
        ctx.state.count = ctx.record_count
        ctx.log.info("batch", { n = #batch })
        if ctx.custom and ctx.custom.commit then ctx:commit() end
      end
      function M.shutdown(ctx) ctx.state.closed = true end
      return M
    ]])
    local s = T.load(path, { custom = { commit = true } })
    assert.is_true(s.ctx.state.opened)
    s:process{ T.put{ pk = {{"id", 1}} }, T.put{ pk = {{"id", 2}} } }
    s:process{ T.delete{ pk = {{"id", 1}} } }
    s:shutdown()
    os.remove(path)
    assert.are.equal(3, s.ctx.state.seen)
    assert.are.equal("test-token-2", s.ctx.state.token)
    assert.are.equal(1, s.ctx.state.count)
    assert.is_true(s.ctx.state.closed)
    assert.are.equal(2, s.ctx.commits)
    assert.are.equal(2, #s.ctx.logs)
    assert.are.same({ level = "info", msg = "batch", fields = { n = 2 } }, s.ctx.logs[1])
    assert.are.equal("test-channel", s.ctx.channel_id)
  end)

  it("re-raises script errors and still invalidates the batch", function()
    local path = script(os.tmpname(), [[
      local M = {}
      function M.process(ctx, batch) ctx.state.b = batch; error("boom") end
      return M
    ]])
    local s = T.load(path)
    os.remove(path)
    assert.has_error(function() s:process{ T.put{ pk = {{"id", 1}} } } end)
    assert.has_error(function() return #s.ctx.state.b end)
  end)

  it("refuses a script without process", function()
    local path = script(os.tmpname(), "return {}")
    assert.has_error(function() T.load(path) end)
    os.remove(path)
  end)
end)

describe("lunnel.testing edge cases", function()
  it("builds an empty batch", function()
    local b = T.batch{}
    assert.are.equal(0, #b)
    for _ in b:iter() do error("no records expected") end
    assert.is_nil(b[1])
  end)

  it("accepts plain specs in a batch", function()
    local b = T.batch{ { action = "PUT", pk = {{"id", 7}}, cols = {x = 1} } }
    assert.are.equal(7, b[1].pk.id)
  end)
end)
