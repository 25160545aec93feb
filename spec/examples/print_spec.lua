-- print_spec: examples/print.lua writes one readable line per record.
local T = require("lunnel.testing")

describe("examples/print.lua", function()
  it("prints channel, action, pk and columns", function()
    local s = T.load("examples/print.lua", { channel_id = "ch-1" })
    local out = {}
    local real = io.write
    io.write = function(...) for _, x in ipairs({ ... }) do out[#out + 1] = x end end
    local ok, err = pcall(function()
      s:process{
        T.put{ pk = {{"id", 1}}, cols = {name = "x"}, seq = false },
        T.update{ pk = {{"id", 1}}, cols = {name = "y"}, delete = {"n"}, seq = false },
        T.delete{ pk = {{"id", 1}}, seq = false },
      }
    end)
    io.write = real
    assert.is_true(ok, err)
    assert.are.equal(table.concat({
      '[ch-1] PUT pk(id=1) name="x"',
      '[ch-1] UPDATE pk(id=1) name="y" n:DELETE_ALL_VERSIONS',
      '[ch-1] DELETE pk(id=1)',
      "" }, "\n"), table.concat(out))
    -- one string per record, written whole: workers share stdout, and io.write with several
    -- arguments makes several fwrite calls that another worker's line can split
    assert.are.equal(3, #out)
    assert.are.equal("print: channel open", s.ctx.logs[1].msg)
  end)
end)
