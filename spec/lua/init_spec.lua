-- init_spec: require("lunnel") exposes the record module, sentinels, type checks, a private
-- cjson instance and (lazily) the testing helpers.
describe("lunnel module", function()
  local lunnel = require("lunnel")

  it("exposes the record view and sentinels", function()
    assert.are.equal(require("lunnel.record"), lunnel.record)
    assert.are.equal("INF_MIN", tostring(lunnel.INF_MIN))
    assert.are.equal("INF_MAX", tostring(lunnel.INF_MAX))
    assert.are.equal(1, lunnel.ABI_VERSION)
  end)

  it("tells records and batches apart", function()
    local r = lunnel.testing.put{ pk = {{"id", 1}} }
    assert.is_true(lunnel.is_record(r))
    assert.is_false(lunnel.is_batch(r))
    assert.is_false(lunnel.is_record({}))
  end)

  it("has a json codec that does not touch the global cjson settings", function()
    assert.are.equal('{"a":1}', lunnel.json.encode({ a = 1 }))
    assert.are_not.equal(require("cjson"), lunnel.json)
  end)

  it("decodes INF_MIN / INF_MAX primary-key values to the sentinels", function()
    local r = lunnel.testing.put{ pk = {{"lo", lunnel.INF_MIN}, {"hi", lunnel.INF_MAX}} }
    assert.are.equal(lunnel.INF_MIN, r.pk.lo)
    assert.are.equal(lunnel.INF_MAX, r.pk.hi)
    assert.are.equal("<>", r:key())
  end)
end)
