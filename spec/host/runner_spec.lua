-- runner_spec.lua: the Lua side of a Lua-host worker state (lua/lunnel/host.lua) without the
-- C host: script loading and its error messages, ctx building, ctx.state across a handler
-- swap, ctx.log routing and the os.exit guard. Batches themselves are covered by the C tests
-- (runtime/tests/test_lua_host.c), which drive this runner through real worker threads.
local real_exit = os.exit -- runner.init replaces it (busted needs the real one to finish)

describe("lunnel.host runner", function()
  local runner, logged

  after_each(function()
    os.exit = real_exit
  end)

  before_each(function()
    package.loaded["lunnel.host"] = nil
    runner = require("lunnel.host")
    logged = {}
    runner.init({
      custom_json = '{"sink":"/tmp/out.jsonl","n":3}',
      worker = 7,
      log = function(level, msg, list, channel)
        local fields, keys = {}, {}
        for i = 1, #(list or {}), 2 do
          fields[list[i]] = list[i + 1]
          keys[#keys + 1] = list[i]
        end
        logged[#logged + 1] = { level = level, msg = msg, fields = fields, keys = keys,
                                channel = channel }
      end,
    })
  end)

  local function load(src, install)
    return pcall(runner.load, src, "@/scripts/t.lua", 2, install ~= false)
  end

  it("rejects scripts that do not compile, with file and line", function()
    local ok, err = load("local M = {\nreturn M\n")
    assert.is_false(ok)
    assert.matches("^/scripts/t.lua:2:", err)
  end)

  it("rejects modules without a process function", function()
    local ok, err = load("return {open = function() end}")
    assert.is_false(ok)
    assert.matches("no process%(ctx, batch%) function", err)
    ok, err = load("return 1")
    assert.is_false(ok)
    assert.matches("must return a table", err)
    ok, err = load("return {process = function() end, shutdown = 5}")
    assert.is_false(ok)
    assert.matches("shutdown must be a function", err)
  end)

  it("validates without installing when asked", function()
    assert.is_true((load("return {process = function() end}", true)))
    assert.equals(2, runner.version())
    assert.is_true(pcall(runner.load, "return {process = function() end}", "@x.lua", 3, false))
    assert.equals(2, runner.version())
  end)

  it("builds ctx, keeps ctx.state across a swap, routes ctx.log", function()
    assert.is_true((load([[
      local M = {}
      function M.open(ctx)
        ctx.state.opened = (ctx.state.opened or 0) + 1
        ctx.log.info("hello", {sink = ctx.custom.sink, nested = {a = 1}, b = true, n = 3})
      end
      function M.process() end
      function M.shutdown(ctx) ctx.log.warn("bye", {opened = ctx.state.opened}) end
      return M
    ]])))
    runner.open(1, { tunnel_id = "t", client_id = "c", channel_id = "ch-1", is_stream = true })
    assert.equals(1, #logged)
    assert.equals("info", logged[1].level)
    assert.equals("hello", logged[1].msg)
    assert.equals("ch-1", logged[1].channel)
    assert.equals("/tmp/out.jsonl", logged[1].fields.sink)
    assert.equals('{"a":1}', logged[1].fields.nested)
    assert.equals("true", logged[1].fields.b)
    assert.same({ "b", "n", "nested", "sink" }, logged[1].keys) -- sorted: stable lines
    -- swap handlers: the channel's ctx (and its state) stays
    assert.is_true(pcall(runner.load, [[
      return {process = function() end,
              shutdown = function(ctx) ctx.log.error("v3 bye", {opened = ctx.state.opened}) end}
    ]], "@/scripts/t.lua", 3, true))
    runner.shutdown(1)
    assert.equals("error", logged[2].level)
    assert.equals("v3 bye", logged[2].msg)
    assert.equals("1", logged[2].fields.opened)
  end)

  it("reports invalid --custom JSON", function()
    package.loaded["lunnel.host"] = nil
    local r = require("lunnel.host")
    local ok, err = pcall(r.init, { custom_json = "{nope", log = function() end })
    assert.is_false(ok)
    assert.matches("%-%-custom is not valid JSON", err)
  end)

  it("turns os.exit into an error", function()
    local ok, err = pcall(os.exit, 1)
    assert.is_false(ok)
    assert.matches("os.exit is not allowed", err)
  end)
end)
