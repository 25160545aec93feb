-- aggregate_spec: examples/aggregate.lua keeps per-key aggregates in ctx.state keyed by r:key()
-- across batches, handles updates, column deletes and row deletes, and logs a summary.
local T = require("lunnel.testing")

describe("examples/aggregate.lua", function()
  it("aggregates per primary key across batches", function()
    local s = T.load("examples/aggregate.lua", { custom = { column = "amount" } })
    s:process{
      T.put{ pk = {{"shop", "a"}, {"id", 1}}, cols = {amount = 10} },
      T.put{ pk = {{"shop", "a"}, {"id", 2}}, cols = {amount = 5} },
      T.put{ pk = {{"shop", "b"}, {"id", 1}}, cols = {amount = 7} },
    }
    s:process{
      T.update{ pk = {{"shop", "a"}, {"id", 1}}, cols = {amount = 12} },
      T.update{ pk = {{"shop", "a"}, {"id", 1}}, cols = {other = "x"} },
      T.update{ pk = {{"shop", "b"}, {"id", 1}}, delete = {"amount"} },
      T.delete{ pk = {{"shop", "a"}, {"id", 2}} },
    }
    local st = s.ctx.state
    assert.are.equal(2, st.keys)
    assert.are.equal(12, st.total)
    local a1 = st.totals[T.put{ pk = {{"shop", "a"}, {"id", 1}} }:key()]
    assert.are.same({ pk = { shop = "a", id = 1 }, count = 3, value = 12 }, a1)
    assert.is_nil(st.totals[T.put{ pk = {{"shop", "a"}, {"id", 2}} }:key()])
    assert.are.equal(0, st.totals[T.put{ pk = {{"shop", "b"}, {"id", 1}} }:key()].value)
    s:shutdown()
    local last = s.ctx.logs[#s.ctx.logs]
    assert.are.same({ level = "info", msg = "aggregate: summary", fields = { keys = 2, total = 12 } }, last)
  end)

  it("keeps distinct keys apart even when their parts concatenate alike", function()
    local s = T.load("examples/aggregate.lua")
    s:process{
      T.put{ pk = {{"a", "x1"}, {"b", 2}}, cols = {amount = 1} },
      T.put{ pk = {{"a", "x"}, {"b", 12}}, cols = {amount = 2} },
    }
    assert.are.equal(2, s.ctx.state.keys)
    assert.are.equal(3, s.ctx.state.total)
  end)
end)
